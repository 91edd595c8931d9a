import Foundation
import ViTImage
import ViTTensor

/// A labeled image dataset held in memory: 8-bit images (gray or RGB) and class indices.
public struct LabeledImages: Sendable {
    public var images: [Image]
    public var labels: [Int]
    public var classNames: [String]

    public init(images: [Image], labels: [Int], classNames: [String]) {
        precondition(images.count == labels.count, "\(images.count) images for \(labels.count) labels")
        self.images = images
        self.labels = labels
        self.classNames = classNames
    }

    public var count: Int { images.count }
}

/// A problem reading a dataset; one line naming the file.
public typealias DatasetError = FileError

extension LabeledImages {
    /// Fashion-MNIST's class names (Xiao et al. 2017), in label order.
    public static let fashionMNISTClasses = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// Where Debian's dataset-fashion-mnist package puts the files.
    public static let fashionMNISTFolder = "/usr/share/datasets/fashion-mnist"

    /// MNIST-format data (IDX files, gzip or not) in `folder`: `train-images-idx3-ubyte[.gz]`
    /// and `train-labels-idx1-ubyte[.gz]`, or `t10k-...` for the test split. Without class
    /// names the classes are "0" up to the largest label.
    public static func idxFolder(_ folder: String, test: Bool, classNames: [String]? = nil) throws -> LabeledImages {
        let prefix = test ? "t10k" : "train"
        func find(_ name: String) throws -> String {
            for candidate in ["\(folder)/\(name)", "\(folder)/\(name).gz"]
            where FileManager.default.fileExists(atPath: candidate) {
                return candidate
            }
            throw DatasetError(path: "\(folder)/\(name)", reason: "no such file (nor .gz)")
        }
        let imagesPath = try find("\(prefix)-images-idx3-ubyte"), labelsPath = try find("\(prefix)-labels-idx1-ubyte")
        let (imageShape, pixels) = try readIDX(imagesPath)
        let (labelShape, labelBytes) = try readIDX(labelsPath)
        guard imageShape.count == 3, labelShape.count == 1, imageShape[0] == labelShape[0] else {
            throw DatasetError(path: imagesPath, reason: "shapes \(imageShape) and \(labelShape) do not make a dataset")
        }
        let (n, h, w) = (imageShape[0], imageShape[1], imageShape[2])
        let labels = labelBytes.map { Int($0) }
        let classNames = classNames ?? (0...(labels.max() ?? 0)).map(String.init)
        if let bad = labels.first(where: { $0 >= classNames.count }) {
            throw DatasetError(path: labelsPath, reason: "label \(bad) but only \(classNames.count) classes")
        }
        let images = (0..<n).map { i in
            Image(width: w, height: h, channels: 1, pixels: Array(pixels[(i * h * w)..<((i + 1) * h * w)]))
        }
        return LabeledImages(images: images, labels: labels, classNames: classNames)
    }

    /// The largest IDX data read, once inflated: 1 GiB, twenty times MNIST's training images.
    static let maxIDXBytes = 1 << 30

    /// An IDX file (LeCun's MNIST format) of unsigned bytes: its dimensions and data.
    static func readIDX(_ path: String) throws -> ([Int], [UInt8]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError(path: path, reason: "cannot read the file")
        }
        let bytes =
            data.starts(with: [0x1F, 0x8B]) ? try gunzip(data, path: path, maxBytes: maxIDXBytes) : [UInt8](data)
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0, bytes[2] == 0x08 else {
            throw DatasetError(path: path, reason: "not an IDX file of unsigned bytes")
        }
        let rank = Int(bytes[3])
        guard rank >= 1, bytes.count >= 4 + 4 * rank else { throw DatasetError(path: path, reason: "truncated header") }
        let shape = (0..<rank).map { d in
            (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * d + $1]) }
        }
        let count = shape.reduce(1, *), start = 4 + 4 * rank
        guard bytes.count == start + count else {
            throw DatasetError(path: path, reason: "\(bytes.count - start) data bytes for shape \(shape)")
        }
        return (shape, Array(bytes[start...]))
    }

    /// An ImageFolder: one subfolder per class (sorted names are the classes), PNG and JPEG
    /// files inside (searched recursively, sorted).
    public static func imageFolder(_ path: String) throws -> LabeledImages {
        let manager = FileManager.default
        guard let entries = try? manager.contentsOfDirectory(atPath: path) else {
            throw DatasetError(path: path, reason: "not a readable folder")
        }
        let classes = entries.filter { name in
            var isDirectory: ObjCBool = false
            return !name.hasPrefix(".") && manager.fileExists(atPath: "\(path)/\(name)", isDirectory: &isDirectory)
                && isDirectory.boolValue
        }.sorted()
        guard !classes.isEmpty else { throw DatasetError(path: path, reason: "no class subfolders") }
        var images: [Image] = [], labels: [Int] = []
        for (label, name) in classes.enumerated() {
            let folder = "\(path)/\(name)"
            let files = (manager.enumerator(atPath: folder)?.compactMap { $0 as? String } ?? [])
                .filter { ["png", "jpg", "jpeg"].contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
            for file in files {
                do {
                    images.append(try Image.read(path: "\(folder)/\(file)"))
                } catch {
                    throw DatasetError(
                        path: "\(folder)/\(file)", reason: "\((error as? ImageError)?.reason ?? "\(error)")")
                }
                labels.append(label)
            }
        }
        return LabeledImages(images: images, labels: labels, classNames: classes)
    }
}

extension PreprocessProfile {
    /// Fashion-MNIST at 28 x 28: gray replicated to RGB, normalized with the training set's
    /// mean 0.2860 and standard deviation 0.3530.
    public static let fashionMNIST = PreprocessProfile(
        name: "fashion-mnist", resize: .exact(width: 28, height: 28), filter: .bilinear, crop: nil,
        mean: [0.2860, 0.2860, 0.2860], std: [0.3530, 0.3530, 0.3530])

    /// Shapes at 32 x 32: scaled to [-1, 1].
    public static let shapes = PreprocessProfile(
        name: "shapes", resize: .exact(width: 32, height: 32), filter: .bilinear, crop: nil,
        mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
}

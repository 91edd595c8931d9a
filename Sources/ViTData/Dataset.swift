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
        let (imageShape, pixels, pixelsStart) = try readIDX(imagesPath)
        let (labelShape, labelFile, labelsStart) = try readIDX(labelsPath)
        guard imageShape.count == 3, labelShape.count == 1, imageShape[0] == labelShape[0], imageShape[1] > 0,
            imageShape[2] > 0
        else {
            throw DatasetError(path: imagesPath, reason: "shapes \(imageShape) and \(labelShape) do not make a dataset")
        }
        let (n, h, w) = (imageShape[0], imageShape[1], imageShape[2])
        let labels = labelFile[labelsStart...].map { Int($0) }
        let classNames = classNames ?? (0...(labels.max() ?? 0)).map(String.init)
        if let bad = labels.first(where: { $0 >= classNames.count }) {
            throw DatasetError(path: labelsPath, reason: "label \(bad) but only \(classNames.count) classes")
        }
        let images = (0..<n).map { i in
            let start = pixelsStart + i * h * w
            return Image(width: w, height: h, channels: 1, pixels: Array(pixels[start..<(start + h * w)]))
        }
        return LabeledImages(images: images, labels: labels, classNames: classNames)
    }

    /// The largest IDX data read, once inflated: 512 MiB, ten times MNIST's training images.
    static let maxIDXBytes = 512 << 20

    /// An IDX file (LeCun's MNIST format) of unsigned bytes: its dimensions, and the file's
    /// bytes (inflated when gzip) with the data from `dataStart` on. Sizes come from the
    /// header and are checked before anything is allocated for them; a gzip file is
    /// inflated no further than its header declares.
    static func readIDX(_ path: String) throws -> (shape: [Int], bytes: [UInt8], dataStart: Int) {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let fileSize = (attributes?[.size] as? NSNumber)?.intValue,
            let data = fileSize <= maxIDXBytes + (1 << 20) ? FileManager.default.contents(atPath: path) : Data()
        else { throw DatasetError(path: path, reason: "cannot read the file") }
        guard fileSize <= maxIDXBytes + (1 << 20) else {
            throw DatasetError(path: path, reason: "\(fileSize) bytes, more than the limit of \(maxIDXBytes)")
        }
        let gzipped = data.starts(with: [0x1F, 0x8B])
        let longestHeader = 4 + 4 * 255
        let header =
            gzipped
            ? try gunzip(data, path: path, maxBytes: longestHeader, prefixOnly: true)
            : [UInt8](data.prefix(longestHeader))
        guard header.count >= 4, header[0] == 0, header[1] == 0, header[2] == 0x08 else {
            throw DatasetError(path: path, reason: "not an IDX file of unsigned bytes")
        }
        let rank = Int(header[3])
        guard rank >= 1, header.count >= 4 + 4 * rank else {
            throw DatasetError(path: path, reason: "truncated header")
        }
        let shape = (0..<rank).map { d in (0..<4).reduce(0) { $0 << 8 | Int(header[4 + 4 * d + $1]) } }
        var count = 1
        for size in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow, product <= maxIDXBytes else {
                throw DatasetError(
                    path: path, reason: "shape \(shape) declares more than the limit of \(maxIDXBytes) data bytes")
            }
            count = product
        }
        let dataStart = 4 + 4 * rank, total = dataStart + count
        // One byte more than declared is enough to tell that there is more.
        let bytes = gzipped ? try gunzip(data, path: path, maxBytes: total + 1, prefixOnly: true) : [UInt8](data)
        guard bytes.count == total else {
            let found = bytes.count > total ? "more than \(count)" : "\(bytes.count - dataStart)"
            throw DatasetError(path: path, reason: "\(found) data bytes for shape \(shape)")
        }
        return (shape, bytes, dataStart)
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

    /// The profile of a model trained on the data set `name` (as `--data` names it) at
    /// `size` x `size`: Shapes' for shapes:ATTRIBUTE, Fashion-MNIST's for everything else.
    public static func forTraining(on name: String, size: Int) -> PreprocessProfile {
        var profile = name.hasPrefix("shapes:") ? PreprocessProfile.shapes : PreprocessProfile.fashionMNIST
        profile.resize = .exact(width: size, height: size)
        return profile
    }
}

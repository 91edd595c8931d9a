import Foundation

// Data sets by the names the command line takes (`--data`).

extension LabeledImages {
    /// Training and test images of the Shapes data set labeled by one attribute
    /// ("shapes:color"): indices 0..<20000 of seed 0 and 0..<2000 of seed 1, every pair.
    public static let shapesCounts = (train: 20_000, test: 2_000)

    /// The training or test split of a data set named "fashion-mnist" (Debian's
    /// dataset-fashion-mnist), "shapes:ATTRIBUTE", an IDX folder, or an ImageFolder with
    /// train/ and test/.
    public static func named(_ name: String, test: Bool) throws -> LabeledImages {
        if name.hasPrefix("shapes:") {
            let attribute = String(name.dropFirst("shapes:".count))
            guard Shapes.values(of: attribute) != nil else {
                throw DatasetError(
                    path: name, reason: "the attribute must be shape, color, size, position or background")
            }
            return shapes(
                attribute: attribute, count: test ? shapesCounts.test : shapesCounts.train, seed: test ? 1 : 0)
        }
        if name == "fashion-mnist" {
            guard FileManager.default.fileExists(atPath: fashionMNISTFolder) else {
                throw DatasetError(
                    path: fashionMNISTFolder,
                    reason: "Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)")
            }
            return try idxFolder(
                fashionMNISTFolder, test: test, classNames: fashionMNISTClasses)
        }
        guard FileManager.default.fileExists(atPath: name) else {
            throw DatasetError(
                path: name,
                reason:
                    "no such data (fashion-mnist, shapes:ATTRIBUTE, an IDX folder, or an ImageFolder with train/ and test/)"
            )
        }
        let prefix = test ? "t10k" : "train"
        if ["", ".gz"].contains(where: {
            FileManager.default.fileExists(atPath: "\(name)/\(prefix)-images-idx3-ubyte\($0)")
        }) {
            return try idxFolder(name, test: test)
        }
        return try imageFolder(test ? "\(name)/test" : "\(name)/train")
    }
}

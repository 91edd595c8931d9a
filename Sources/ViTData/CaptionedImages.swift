import Foundation
import ViTImage
import ViTTensor

/// Images with captions, held in memory: a folder of images with a `metadata.jsonl` of
/// `{"file_name": ..., "text": ...}` lines (the layout of Hugging Face's ImageFolder with
/// captions; further keys are kept as attributes).
public struct CaptionedImages: Sendable {
    public var images: [Image]
    public var captions: [String]
    /// Every other string field of each metadata line (for Shapes: shape, color, size,
    /// position, background).
    public var attributes: [[String: String]]

    public var count: Int { images.count }

    public init(images: [Image], captions: [String], attributes: [[String: String]]) {
        precondition(images.count == captions.count, "\(images.count) images for \(captions.count) captions")
        self.images = images
        self.captions = captions
        self.attributes = attributes
    }

    /// The name of the metadata file in a captioned folder.
    public static let metadataFile = "metadata.jsonl"

    /// Reads `folder/metadata.jsonl` and every image it names (paths relative to the folder).
    public static func folder(_ folder: String) throws -> CaptionedImages {
        let metadataPath = "\(folder)/\(metadataFile)"
        guard let data = FileManager.default.contents(atPath: metadataPath) else {
            throw DatasetError(path: metadataPath, reason: "cannot read (a captioned folder needs one)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DatasetError(path: metadataPath, reason: "not UTF-8 text")
        }
        var result = CaptionedImages(images: [], captions: [], attributes: [])
        for (number, line) in textLines(text).enumerated() where !line.allSatisfy(\.isWhitespace) {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            guard let object, let file = object["file_name"] as? String, let caption = object["text"] as? String
            else {
                throw DatasetError(
                    path: metadataPath, reason: "line \(number + 1): not a JSON object with file_name and text strings")
            }
            guard !file.hasPrefix("/"), !file.split(separator: "/").contains("..") else {
                throw DatasetError(
                    path: metadataPath, reason: "line \(number + 1): file_name '\(file)' leads out of the folder")
            }
            result.images.append(try Image.read(path: "\(folder)/\(file)"))
            result.captions.append(caption)
            var extra: [String: String] = [:]
            for (key, value) in object where key != "file_name" && key != "text" {
                if let value = value as? String { extra[key] = value }
            }
            result.attributes.append(extra)
        }
        return result
    }

    /// One metadata.jsonl line: file name, caption and attributes, keys sorted.
    public static func metadataLine(fileName: String, caption: String, attributes: [String: String]) -> String {
        var object = attributes
        object["file_name"] = fileName
        object["text"] = caption
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}

extension ShapeAttributes {
    /// The attributes as metadata fields.
    public var fields: [String: String] {
        ["shape": shape, "color": color, "size": size, "position": position, "background": background]
    }
}

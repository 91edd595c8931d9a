import Foundation
import ViTTensor

// Key maps and config readers for checkpoints from other libraries (HF, timm): tensor
// names are renamed by regular-expression rules onto SwiftViT's, and separate query, key
// and value projections are fused into one.

/// A renaming rule: a regular expression over the whole key and its template.
public struct KeyRule: Sendable {
    let pattern: NSRegularExpression
    let template: String

    public init(_ pattern: String, _ template: String) {
        self.pattern = try! NSRegularExpression(pattern: "^\(pattern)$")
        self.template = template
    }

    public func apply(_ key: String) -> String? {
        let range = NSRange(key.startIndex..., in: key)
        guard pattern.firstMatch(in: key, range: range) != nil else { return nil }
        return pattern.stringByReplacingMatches(in: key, range: range, withTemplate: template)
    }
}

/// Renames every key by the first rule that matches (keys no rule matches stay as they
/// are, so strict loading reports them), then fuses "X.qkv.{query,key,value}.P" into
/// "X.qkv.P" by concatenating along the output axis.
public func renameAndFuse(_ tensors: [String: Tensor], rules: [KeyRule], origin: String) throws -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    var parts: [String: [String: Tensor]] = [:]
    for (key, tensor) in tensors {
        let name = rules.lazy.compactMap { $0.apply(key) }.first ?? key
        if let range = name.range(of: #"\.qkv\.(query|key|value)\."#, options: .regularExpression) {
            let part = String(name[range].split(separator: ".")[1])
            let fused = name.replacingCharacters(in: range, with: ".qkv.")
            parts[fused, default: [:]][part] = tensor
        } else {
            out[name] = tensor
        }
    }
    for (name, group) in parts {
        guard let q = group["query"], let k = group["key"], let v = group["value"] else {
            throw CheckpointError(
                path: origin, reason: "'\(name)' needs query, key and value; found \(group.keys.sorted())")
        }
        guard q.shape == k.shape && k.shape == v.shape else {
            throw CheckpointError(
                path: origin, reason: "'\(name)': query \(q.shape), key \(k.shape), value \(v.shape) differ")
        }
        out[name] = Tensor.concatenate([q, k, v], axis: 0)
    }
    return out
}

public func readJSON(_ path: String) throws -> [String: Any] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CheckpointError(path: path, reason: "cannot read the file")
    }
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw CheckpointError(path: path, reason: "not a JSON object")
    }
    return object
}

/// A JSON value as Int, Float, String or array, with a one-line error when it is not.
public struct JSONFields {
    public let object: [String: Any]
    public let path: String

    public init(object: [String: Any], path: String) {
        self.object = object
        self.path = path
    }

    public func int(_ key: String, default value: Int? = nil) throws -> Int {
        if let v = object[key] as? NSNumber, let i = Int(exactly: v.doubleValue) { return i }
        if object[key] == nil, let value { return value }
        throw CheckpointError(path: path, reason: "'\(key)' is missing or not an integer")
    }

    public func float(_ key: String, default value: Float? = nil) throws -> Float {
        if let v = object[key] as? NSNumber { return v.floatValue }
        if object[key] == nil, let value { return value }
        throw CheckpointError(path: path, reason: "'\(key)' is missing or not a number")
    }

    public func floats(_ key: String, default value: [Float]? = nil) throws -> [Float] {
        if let v = object[key] as? [NSNumber] { return v.map(\.floatValue) }
        if object[key] == nil, let value { return value }
        throw CheckpointError(path: path, reason: "'\(key)' is missing or not a list of numbers")
    }

    public func bool(_ key: String, default value: Bool) throws -> Bool {
        if object[key] == nil { return value }
        if let v = object[key] as? Bool { return v }
        throw CheckpointError(path: path, reason: "'\(key)' is not true or false")
    }

    public func string(_ key: String, default value: String? = nil) throws -> String {
        if let v = object[key] as? String { return v }
        if object[key] == nil, let value { return value }
        throw CheckpointError(path: path, reason: "'\(key)' is missing or not a string")
    }

    /// A Hugging Face activation name (default "gelu"), the one parser for every HF config:
    /// "gelu" is the exact erf GELU; "gelu_new", "gelu_pytorch_tanh" and "gelu_fast" are
    /// the tanh approximation, 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), written
    /// in three ways in transformers' activations.py.
    public func activation(_ key: String) throws -> GELUApproximation {
        let name = try string(key, default: "gelu")
        switch name {
        case "gelu": return .none
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": return .tanh
        default:
            throw CheckpointError(
                path: path, reason: "'\(key)' is '\(name)', not one of gelu, gelu_new, gelu_pytorch_tanh, gelu_fast")
        }
    }
}

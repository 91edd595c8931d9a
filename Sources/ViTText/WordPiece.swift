import Foundation
import ViTTensor

/// BERT's tokenizer (Devlin et al. 2019): basic tokenization (cleaning, CJK splitting,
/// lower-casing, accent stripping, punctuation splitting), then greedy longest-match
/// WordPiece with "##" continuations, as Hugging Face's BertTokenizer does it.
public struct WordPieceTokenizer: Sendable {
    /// Token to id, from vocab.txt (one token per line, the line number is the id).
    public let vocabulary: [String: Int]
    public let lowercase: Bool
    /// nil: strip accents when lower-casing (BERT's default).
    public let stripAccents: Bool?
    public let splitCJK: Bool
    /// Longest sequence including [CLS] and [SEP].
    public let maxLength: Int
    public let unknownID: Int, classID: Int, separatorID: Int, paddingID: Int
    /// Words longer than this many characters become [UNK] (HF's max_input_chars_per_word).
    public let maxCharactersPerWord = 100

    public init(
        vocabulary: [String: Int], lowercase: Bool = true, stripAccents: Bool? = nil, splitCJK: Bool = true,
        maxLength: Int = 512
    ) throws {
        func id(_ token: String) throws -> Int {
            guard let id = vocabulary[token] else {
                throw TextModelError(path: nil, reason: "vocabulary has no \(token)")
            }
            return id
        }
        self.vocabulary = vocabulary
        self.lowercase = lowercase
        self.stripAccents = stripAccents
        self.splitCJK = splitCJK
        self.maxLength = maxLength
        unknownID = try id("[UNK]")
        classID = try id("[CLS]")
        separatorID = try id("[SEP]")
        paddingID = try id("[PAD]")
    }

    /// Reads vocab.txt (UTF-8, one token per line, LF, CRLF or CR line ends) as BertTokenizer
    /// does: a line's number is its token's id, and a token on several lines keeps the last.
    /// A file of more than `maxTokens` lines (the embedding table's rows) is refused.
    public static func readVocabulary(path: String, maxTokens: Int = Int.max) throws -> [String: Int] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TextModelError(path: path, reason: "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TextModelError(path: path, reason: "not UTF-8 text")
        }
        let lines = textLines(text)
        guard lines.count <= maxTokens else {
            throw TextModelError(
                path: path, reason: "\(lines.count) tokens, more than the \(maxTokens) rows of the embedding table")
        }
        var vocabulary: [String: Int] = [:]
        for (i, token) in lines.enumerated() { vocabulary[token] = i }
        return vocabulary
    }

    /// The first `limit` WordPiece tokens of a text, without [CLS] and [SEP]. Words are
    /// taken one at a time, so a long text costs no more than the words that give them.
    public func tokens(_ text: String, limit: Int = .max) -> [String] {
        var out: [String] = []
        var word = String.UnicodeScalarView()
        /// Adds the pieces of the word so far; false once `limit` tokens are there.
        func endWord() -> Bool {
            guard !word.isEmpty else { return out.count < limit }
            var text = String(word)
            word = String.UnicodeScalarView()
            if lowercase { text = text.lowercased() }
            if stripAccents ?? lowercase { text = strippingAccents(text) }
            for part in splitOnPunctuation(text) {
                out += wordPieces(part)
                if out.count >= limit { return false }
            }
            return true
        }
        // BERT's basic tokenization: control characters dropped, words split at whitespace,
        // CJK ideographs words of their own, then lower case, accents and punctuation.
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || isControl(scalar) { continue }
            if isWhitespace(scalar) {
                guard endWord() else { break }
            } else if splitCJK && isCJK(scalar) {
                guard endWord() else { break }
                word.append(scalar)
                guard endWord() else { break }
            } else {
                word.append(scalar)
            }
        }
        _ = endWord()
        return Array(out.prefix(limit))
    }

    /// Token ids: [CLS] tokens [SEP], the tokens truncated so that the whole fits maxLength.
    public func encode(_ text: String) -> [Int] {
        let ids = tokens(text, limit: max(0, maxLength - 2)).map { vocabulary[$0] ?? unknownID }
        return [classID] + ids + [separatorID]
    }

    /// Encoded texts padded with [PAD] to the longest, and their mask (1 real, 0 padding).
    public func padded(_ encoded: [[Int]]) -> (ids: [[Int]], mask: [[Int]]) {
        let length = encoded.map(\.count).max() ?? 0
        return (
            encoded.map { $0 + Array(repeating: paddingID, count: length - $0.count) },
            encoded.map { Array(repeating: 1, count: $0.count) + Array(repeating: 0, count: length - $0.count) }
        )
    }

    // MARK: Basic tokenization

    func strippingAccents(_ word: String) -> String {
        let decomposed = word.decomposedStringWithCanonicalMapping
        var scalars = String.UnicodeScalarView()
        for scalar in decomposed.unicodeScalars where scalar.properties.generalCategory != .nonspacingMark {
            scalars.append(scalar)
        }
        return String(scalars)
    }

    func splitOnPunctuation(_ word: String) -> [String] {
        var out: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in word.unicodeScalars {
            if isPunctuation(scalar) {
                if !current.isEmpty { out.append(String(current)) }
                current = String.UnicodeScalarView()
                out.append(String(scalar))
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { out.append(String(current)) }
        return out
    }

    // MARK: WordPiece

    /// Greedy longest match from the left; one unmatched piece makes the word [UNK].
    func wordPieces(_ word: String) -> [String] {
        if word.unicodeScalars.count > maxCharactersPerWord { return ["[UNK]"] }
        let characters = Array(word.unicodeScalars)
        var pieces: [String] = []
        var start = 0
        while start < characters.count {
            var end = characters.count
            var found: String?
            while start < end {
                var piece = String(String.UnicodeScalarView(characters[start..<end]))
                if start > 0 { piece = "##" + piece }
                if vocabulary[piece] != nil {
                    found = piece
                    break
                }
                end -= 1
            }
            guard let found else { return ["[UNK]"] }
            pieces.append(found)
            start = end
        }
        return pieces
    }
}

// Character classes as BERT's tokenizer defines them.

/// Tab, newline, carriage return, space and Unicode Zs; also the line and paragraph
/// separators (Zl, Zp), on which BERT's word splitting (Python's str.split) breaks too.
func isWhitespace(_ s: Unicode.Scalar) -> Bool {
    if s == " " || s == "\t" || s == "\n" || s == "\r" { return true }
    switch s.properties.generalCategory {
    case .spaceSeparator, .lineSeparator, .paragraphSeparator: return true
    default: return false
    }
}

/// Unicode categories Cc, Cf, Co, Cs, Cn other than tab, newline and carriage return.
func isControl(_ s: Unicode.Scalar) -> Bool {
    if s == "\t" || s == "\n" || s == "\r" { return false }
    switch s.properties.generalCategory {
    case .control, .format, .privateUse, .surrogate, .unassigned: return true
    default: return false
    }
}

/// ASCII symbols (33-47, 58-64, 91-96, 123-126) and Unicode P*.
func isPunctuation(_ s: Unicode.Scalar) -> Bool {
    let v = s.value
    if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
        return true
    }
    switch s.properties.generalCategory {
    case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
        .finalPunctuation, .otherPunctuation:
        return true
    default: return false
    }
}

/// The CJK Unified Ideographs blocks BERT separates into single characters.
func isCJK(_ s: Unicode.Scalar) -> Bool {
    let v = s.value
    return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
        || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
        || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
}

/// A problem loading a text model or tokenizer; one line naming the file.
public typealias TextModelError = FileError

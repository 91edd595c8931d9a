// libFuzzer target: vocab.txt and WordPiece: the input is read as a vocabulary, and, when
// that vocabulary has the special tokens, tokenized as text with it.
import Foundation
import ViTText

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVocabulary(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Data(bytes: start, count: count)
    let path = writeScratch("vocab.txt", bytes)
    var vocabulary = (try? WordPieceTokenizer.readVocabulary(path: path, maxTokens: 30_522)) ?? [:]
    for (index, token) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].enumerated() where vocabulary[token] == nil {
        vocabulary[token] = 40_000 + index
    }
    guard let tokenizer = try? WordPieceTokenizer(vocabulary: vocabulary, maxLength: 64) else { return 0 }
    _ = tokenizer.encode(String(decoding: bytes, as: UTF8.self))
    return 0
}

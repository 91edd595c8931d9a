"""Golden files for the text side: a corpus, its token ids from Hugging Face's
BertTokenizer, and sentence embeddings from sentence-transformers, for
sentence-transformers/all-MiniLM-L6-v2 (fetched by Weights/fetch-minilm.sh).

Run from the repo root:  python Tests/Reference/text_encoder.py
Writes Tests/ViTTextTests/Golden/corpus.txt (made once from a fixed seed, then kept),
token_ids.jsonl (one JSON list per corpus line, truncated to the model's 256 tokens) and
embeddings.safetensors ("embeddings" [60, 384] for the first 60 lines).
"""
import json
import os
import random

import torch
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer
from transformers import BertTokenizer

MODEL = "Weights/all-MiniLM-L6-v2"
OUT = "Tests/ViTTextTests/Golden"

HANDWRITTEN = [
    "A photo of a cat sitting on a sofa.",
    "The quick brown fox jumps over the lazy dog.",
    "Café, naïve, résumé, coöperate, jalapeño, Ångström, façade.",
    "ÉCOLE ÉLÉMENTAIRE: ÇA VA? Über Größe, straße, ﬁ ligature.",
    "Hello, world!!! What's up?! (parentheses) [brackets] {braces} <angles>",
    "Numbers: 3.14159, 2,718, 1e-10, -42, +7, 100%, $19.99, €5, 10/11/2024, 12:30pm.",
    "東京は日本の首都です。",
    "我喜欢机器学习和深度学习。",
    "한국어 문장도 있습니다.",
    "日本語とEnglishのmixed文章です。",
    "Emoji: 😀 🎉 👍🏽 🇫🇷 ❤️ 🐱‍👤 and text after.",
    "Supercalifragilisticexpialidocious is a very long word.",
    "Pneumonoultramicroscopicsilicovolcanoconiosis and antidisestablishmentarianism.",
    "a" * 120,
    "x" * 99 + " " + "y" * 100 + " " + "z" * 101,
    "",
    "   ",
    "\t\n\r  leading and trailing whitespace  \n",
    "Tabs\tand\nnewlines\r\nmixed\u00a0with\u2003unicode\u2009spaces.",
    "Control\u0000chars\u0007here\u200band\ufeffzero\u200cwidth\ufffd.",
    "Line\u2028separator and paragraph\u2029separator.",
    "Ελληνικά: ΣΟΦΙΑ σοφία, ΟΔΥΣΣΕΥΣ.",
    "Русский текст с ёлкой и Ёжиком.",
    "العربية: مرحبا بالعالم",
    "עברית: שלום עולם",
    "हिन्दी में एक वाक्य।",
    "ไทย ภาษาไทย",
    "Vietnamese: Tiếng Việt có dấu.",
    "Türkçe: İstanbul, ığdır, IŞIK.",
    "Polish: Zażółć gęślą jaźń.",
    "Dashes — en – em ‒ and quotes “double” ‘single’ «guillemets» „low“.",
    "Math: ∑ x² ≤ ∞, α+β=γ, √2 ≈ 1.414, ½ ¾ ⅞.",
    "Code: def f(x): return x**2 # comment; a[i] += b->c && d || !e",
    "URL: https://example.com/path?query=1&other=two#fragment, email: someone@example.org",
    "Hashtags #MachineLearning @user_name snake_case camelCase kebab-case.",
    "Ellipsis… and unicode dots ‥ and middle dot · and bullet •.",
    "Superscripts x¹ y² z³ and subscripts H₂O CO₂.",
    "Fullwidth ＡＢＣ １２３ ！？ characters.",
    "Accents decomposed: e\u0301cole, n\u0303, a\u0308.",
    "MiXeD CaSe WoRdS AND ALL CAPS SENTENCE.",
    "don't won't can't it's y'all o'clock rock'n'roll",
    "Hyphenated-words well-known state-of-the-art twenty-one.",
    "A dog.",
    "Two dogs play in the snow.",
    "A man is riding a horse on the beach.",
    "The stock market fell sharply today.",
    "Vision Transformers split an image into 16x16 patches.",
    "An image is worth 16x16 words: transformers for image recognition at scale.",
    "Attention is all you need.",
    "BERT: pre-training of deep bidirectional transformers for language understanding.",
    "I love programming in Swift.",
    "Swift is a general-purpose programming language built using a modern approach.",
    "The weather is lovely today, isn't it?",
    "Please classify this image of a sneaker.",
    "A red apple on a wooden table.",
    "Ankle boots and sandals are both footwear.",
    "T-shirts, trousers and pullovers are clothing.",
    "What is the capital of France? Paris.",
    ("This sentence is repeated to make a text longer than the maximum sequence length. " * 30).strip(),
    " ".join(f"token{i}" for i in range(400)),
]

WORDS = ("image patch transformer attention head layer token embedding vision language model train test "
         "sneaker boot coat dress shirt bag trouser sandal pullover cat dog bird car plane ship").split()
EXTRAS = ["é", "ü", "ñ", "ç", "ß", "ø", "Å", "—", "…", "!", "?", ",", ".", ";", ":", "'", "\"", "(", ")", "2024",
          "3.5", "42", "東", "京", "語", "😀", "🚀", "♥", "✓", "€", "%", "#", "@", "&", "ﬁ", "Ⅻ"]


def corpus():
    path = f"{OUT}/corpus.txt"
    if os.path.exists(path):
        return open(path, encoding="utf-8").read().split("\n")[:-1]
    rng = random.Random(0)
    lines = []
    for _ in range(160):
        words = []
        for _ in range(rng.randint(1, 40)):
            w = rng.choice(WORDS)
            if rng.random() < 0.3:
                w = w.capitalize() if rng.random() < 0.5 else w.upper()
            if rng.random() < 0.25:
                w += rng.choice(EXTRAS)
            if rng.random() < 0.1:
                w = rng.choice(EXTRAS) + w
            words.append(w)
        lines.append(" ".join(words))
    # Corpus lines are separated by "\n"; the texts keep other whitespace escaped-free.
    all_lines = [l.replace("\n", " \\n ").replace("\r", " \\r ") for l in HANDWRITTEN] + lines
    with open(path, "w", encoding="utf-8") as f:
        for line in all_lines:
            f.write(line + "\n")
    return all_lines


def main():
    lines = corpus()
    tokenizer = BertTokenizer.from_pretrained(MODEL)
    with open(f"{OUT}/token_ids.jsonl", "w") as f:
        for line in lines:
            f.write(json.dumps(tokenizer(line, truncation=True, max_length=256)["input_ids"]) + "\n")
    model = SentenceTransformer(MODEL, device="cpu")
    embeddings = model.encode(lines[:60], convert_to_tensor=True, batch_size=16)
    save_file({"embeddings": embeddings.float().contiguous()}, f"{OUT}/embeddings.safetensors")
    print(len(lines), "lines;", type(tokenizer).__name__, "; embeddings", tuple(embeddings.shape))


if __name__ == "__main__":
    main()

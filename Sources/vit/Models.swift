import ArgumentParser
import Foundation
import ViTCheckpoint
import ViTHub

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the models in the Hugging Face cache, or remove one.",
        subcommands: [ListModels.self, RemoveModel.self], defaultSubcommand: ListModels.self)
}

struct ListModels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the models in the Hugging Face cache and what this tool reads of them.",
        discussion: """
            The cache is the one transformers, timm and sentence-transformers share: \
            $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. Each model is \
            listed with its revisions (branches and tags, with their commits), the size of \
            its files and its kind: hf-vit and timm models go to --model of classify, \
            attention, eval, info, bench and train --from; sentence-transformers and hf-bert \
            ones to embed. Any of them is named as ORG/NAME, or ORG/NAME@REVISION.
            """)

    func run() throws {
        let cache = HubCache()
        let models = cache.models()
        print("cache: \(cache.root)")
        guard !models.isEmpty else {
            print("no models")
            return
        }
        for model in models {
            let revisions =
                model.revisions.isEmpty
                ? model.commits.map { String($0.prefix(12)) }.joined(separator: ", ")
                : model.revisions.map { "\($0.name) (\($0.commit.prefix(12)))" }.joined(separator: ", ")
            let snapshot = model.revisions.first(where: { $0.name == "main" })?.commit ?? model.commits.first
            let kind = snapshot.map { modelKind(folder: "\(cache.folder(of: model.repository))/snapshots/\($0)") }
            print(
                "\(model.repository)  \(kind ?? "no snapshot")  \(megabytes(model.bytes))  revisions: \(revisions.isEmpty ? "none" : revisions)"
            )
        }
    }
}

struct RemoveModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove a model, or one revision of it, from the Hugging Face cache.",
        discussion: """
            NAME is ORG/NAME: the whole model goes. ORG/NAME@REVISION removes that revision \
            alone: its snapshot, the branches and tags that point at it, and the files no \
            other revision shares.
            """)

    @Argument(help: "ORG/NAME or ORG/NAME@REVISION.")
    var name: String

    func run() throws {
        guard let parsed = HubCache.ModelName(name) else {
            throw CLIFailure("'\(name)' is not a Hugging Face model name (ORG/NAME[@REVISION])")
        }
        let freed = try HubCache().remove(parsed, wholeModel: !name.contains("@"))
        print("removed \(name) (\(megabytes(freed)) freed)")
    }
}

/// Bytes in decimal megabytes with one decimal, as huggingface_hub's cache listing shows them.
func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }

/// What a model folder holds, as the loaders tell formats apart: "sentence-transformers"
/// (modules.json), "timm" (config.json with "architecture"), "hf-vit" or "hf-bert"
/// (config.json's model_type), else "not readable by vit".
func modelKind(folder: String) -> String {
    let manager = FileManager.default
    if manager.fileExists(atPath: "\(folder)/modules.json") { return "sentence-transformers" }
    guard let data = manager.contents(atPath: "\(folder)/config.json"),
        let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    else { return "not readable by vit" }
    if config["architecture"] != nil { return "timm" }
    switch config["model_type"] as? String {
    case "vit": return "hf-vit"
    case "bert": return "hf-bert"
    default: return "not readable by vit"
    }
}

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a model from the Hugging Face Hub into the hub cache.",
        discussion: """
            NAME is ORG/NAME or ORG/NAME@REVISION (a branch, tag or commit). The files SwiftViT \
            reads (a ViT's config.json, model.safetensors and preprocessor_config.json; a \
            BERT or sentence-transformers model's weights, tokenizer and pooling files) go \
            into the cache transformers, timm and sentence-transformers share, laid out as \
            huggingface_hub lays it out, so that each finds what the other fetched. Files \
            already there are not fetched again; an interrupted download resumes. Reads \
            HF_ENDPOINT (default https://huggingface.co), HF_TOKEN, HF_HUB_CACHE or HF_HOME, \
            and HF_HUB_OFFLINE. Commands that take --model fetch a missing model themselves.
            """)

    @Argument(help: "The model: ORG/NAME[@REVISION].") var name: String

    func run() throws {
        guard let model = HubCache.ModelName(name) else {
            throw ValidationError("'\(name)' is not a Hugging Face model name (ORG/NAME[@REVISION])")
        }
        let downloader = HubDownloader(cache: HubCache())
        guard !downloader.offline else {
            throw CLIFailure("\(model): HF_HUB_OFFLINE is set, so nothing can be fetched")
        }
        print(try fetchModel(model, with: downloader))
    }
}

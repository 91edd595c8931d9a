import Foundation
import ViTData
import ViTGenerator
import ViTImage
import ViTTensor
import ViTVision

/// Judges Shapes images by their attributes: one classifier per attribute (shape, color,
/// size, position, background), each trained with `vit train classifier --data
/// shapes:ATTRIBUTE`.
public struct ShapesJudge {
    public static let attributes = ["shape", "color", "size", "position", "background"]
    public let classifiers: [String: ImageClassifier]

    /// The classifier files `shapes-judge-ATTRIBUTE.safetensors` in `folder`.
    public static func load(folder: String) throws -> ShapesJudge {
        var classifiers: [String: ImageClassifier] = [:]
        for attribute in attributes {
            let classifier = try ImageClassifier.load(path: "\(folder)/shapes-judge-\(attribute).safetensors")
            guard classifier.labels == Shapes.values(of: attribute)! else {
                throw ModelError(path: classifier.path, reason: "its labels are not the Shapes \(attribute) values")
            }
            classifiers[attribute] = classifier
        }
        return ShapesJudge(classifiers: classifiers)
    }

    /// The judged value of every attribute for each image.
    public func judge(_ images: [Image], batchSize: Int = 256) throws -> [[String: String]] {
        var out = [[String: String]](repeating: [:], count: images.count)
        for (attribute, classifier) in classifiers {
            for start in stride(from: 0, to: images.count, by: batchSize) {
                let batch = images[start..<min(images.count, start + batchSize)]
                let logits = classifier.logits(Tensor.stack(try batch.map { try classifier.input(for: $0) }))
                for (offset, index) in logits.argmaxLastAxis().enumerated() {
                    out[start + offset][attribute] = classifier.labels[index]
                }
            }
        }
        return out
    }
}

/// How well generated images match their captions, for one set of captions.
public struct CaptionSetScore: Sendable, Codable, Equatable {
    public var captions: Int
    public var images: Int
    /// Per attribute: the fraction of images, among those whose caption names it, judged
    /// to have the named value.
    public var attributeAccuracy: [String: Float]
    /// The fraction of images whose every named attribute is judged right.
    public var allNamedRight: Float
    /// Per attribute that some captions leave open (the background when unnamed): the mean
    /// over those captions of the normalized entropy of the judged values of its images
    /// (1: all values equally often; 0: always the same).
    public var openEntropy: [String: Float]
    /// The same figure for real images drawn with the captions' named attributes and the
    /// open ones at random: the diversity to match.
    public var realOpenEntropy: [String: Float]
}

/// A generator's judged figures on seen and held-out captions.
public struct GeneratorScore: Sendable, Codable, Equatable {
    public var seen: CaptionSetScore
    public var heldOut: CaptionSetScore
    public var samplesPerCaption: Int
}

/// A caption of the Shapes set and the attributes it names.
public struct JudgedCaption: Sendable {
    public let caption: String
    public let attributes: ShapeAttributes
    /// The attributes the caption names (all but the background, unless it says "background").
    public var named: [String] {
        caption.contains("background") ? ShapesJudge.attributes : Array(ShapesJudge.attributes.dropLast())
    }
}

extension JudgedCaption {
    /// The fixed evaluation captions: `count` from the training split's pairs and `count`
    /// naming held-out pairs, drawn with seed 1234 (training uses seed 0).
    public static func evaluationSet(count: Int = 40) -> (seen: [JudgedCaption], heldOut: [JudgedCaption]) {
        func captions(_ split: ShapesSplit) -> [JudgedCaption] {
            (0..<count).map {
                let sample = Shapes.sample(index: $0, seed: 1234, split: split)
                return JudgedCaption(caption: sample.caption, attributes: sample.attributes)
            }
        }
        return (captions(.train), captions(.heldOut))
    }
}

extension ShapesJudge {
    /// Scores images made for captions: `images[i]` holds the images of `captions[i]`.
    public func score(_ captions: [JudgedCaption], images: [[Image]], seed: UInt64 = 7) throws -> CaptionSetScore {
        let judged = try judge(images.flatMap { $0 })
        var offset = 0
        var right: [String: Int] = [:], named: [String: Int] = [:], allRight = 0
        var entropies: [String: [Float]] = [:], realEntropies: [String: [Float]] = [:]
        var generator = SeededGenerator(seed: seed)
        for (caption, group) in zip(captions, images) {
            let verdicts = Array(judged[offset..<(offset + group.count)])
            offset += group.count
            let truth = caption.attributes.fields
            for verdict in verdicts {
                var all = true
                for attribute in caption.named {
                    named[attribute, default: 0] += 1
                    if verdict[attribute] == truth[attribute] { right[attribute, default: 0] += 1 } else { all = false }
                }
                if all { allRight += 1 }
            }
            for attribute in ShapesJudge.attributes where !caption.named.contains(attribute) {
                let values = Shapes.values(of: attribute)!
                entropies[attribute, default: []].append(
                    normalizedEntropy(verdicts.map { $0[attribute]! }, over: values))
                // Real images with the named attributes and this one drawn at random.
                let real = (0..<group.count).map { _ -> Image in
                    var fields = truth
                    fields[attribute] = values[Int(generator.next() % UInt64(values.count))]
                    let attributes = ShapeAttributes(
                        shape: fields["shape"]!, color: fields["color"]!, size: fields["size"]!,
                        position: fields["position"]!, background: fields["background"]!)
                    return Shapes.render(
                        attributes, offset: (generator.nextUniform() * 2 - 1, generator.nextUniform() * 2 - 1))
                }
                realEntropies[attribute, default: []].append(
                    normalizedEntropy(try judge(real).map { $0[attribute]! }, over: values))
            }
        }
        func mean(_ values: [Float]) -> Float { values.reduce(0, +) / Float(max(values.count, 1)) }
        return CaptionSetScore(
            captions: captions.count, images: judged.count,
            attributeAccuracy: Dictionary(
                uniqueKeysWithValues: named.map { ($0.key, Float(right[$0.key] ?? 0) / Float($0.value)) }),
            allNamedRight: Float(allRight) / Float(max(judged.count, 1)),
            openEntropy: entropies.mapValues(mean), realOpenEntropy: realEntropies.mapValues(mean))
    }

    /// Generates `samples` images per caption (seeds 0..<samples) and scores them, seen and
    /// held-out captions separately.
    public func score(
        _ generator: CaptionGenerator, samples: Int, sampling: CaptionGenerator.Sampling, batchSize: Int = 64,
        progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> GeneratorScore {
        let (seen, heldOut) = JudgedCaption.evaluationSet()
        let total = (seen.count + heldOut.count) * samples
        var done = 0
        func images(_ captions: [JudgedCaption]) -> [[Image]] {
            let jobs = captions.flatMap { c in (0..<samples).map { (c.caption, UInt64($0)) } }
            var out: [Image] = []
            for start in stride(from: 0, to: jobs.count, by: batchSize) {
                let batch = jobs[start..<min(jobs.count, start + batchSize)]
                out += generator.generate(captions: batch.map(\.0), seeds: batch.map(\.1), sampling: sampling)
                done += batch.count
                progress(done, total)
            }
            return (0..<captions.count).map { Array(out[($0 * samples)..<(($0 + 1) * samples)]) }
        }
        return GeneratorScore(
            seen: try score(seen, images: images(seen)), heldOut: try score(heldOut, images: images(heldOut)),
            samplesPerCaption: samples)
    }
}

/// The entropy of the values' frequencies divided by log(number of possible values).
public func normalizedEntropy(_ values: [String], over possible: [String]) -> Float {
    guard possible.count > 1, !values.isEmpty else { return 0 }
    var counts: [String: Int] = [:]
    for v in values { counts[v, default: 0] += 1 }
    let n = Double(values.count)
    let h = counts.values.reduce(0.0) { h, c in
        let p = Double(c) / n
        return h - p * Foundation.log(p)
    }
    return Float(h / Foundation.log(Double(possible.count)))
}

/// How well a Fashion-MNIST generator draws the class its caption names.
public struct FashionMNISTScore: Sendable, Codable, Equatable {
    public var samplesPerClass: Int
    /// Per class: the fraction of its generated images the classifier assigns to it.
    public var classAccuracy: [String: Float]
    /// The same over all generated images.
    public var accuracy: Float
    /// The classifier's accuracy on the real test images the distances compare against.
    public var realAccuracy: Float
    /// The Fréchet distance between the classifier's pooled features of the generated
    /// images and of as many real test images.
    public var frechetDistance: Double
    /// The same distance between two disjoint sets of as many real test images: the floor
    /// that sampling alone gives at this size.
    public var realFrechetDistance: Double
}

/// Judges Fashion-MNIST images with a Fashion-MNIST classifier (the shipped one by
/// default): its accuracy on each class's generated images and a Fréchet distance on the
/// pooled features its head reads (FID in the manner of Heusel et al. 2017, with this
/// classifier in place of Inception).
public struct FashionMNISTJudge {
    public let classifier: ImageClassifier

    public init(classifier: ImageClassifier) throws {
        guard classifier.labels == LabeledImages.fashionMNISTClasses else {
            throw ModelError(path: classifier.path, reason: "its labels are not the Fashion-MNIST classes")
        }
        self.classifier = classifier
    }

    /// Predicted classes and pooled features [N, D]. Images of 32 x 32 are taken as
    /// Fashion-MNIST padded by 2 pixels, as the generator's training data is, and cropped
    /// back to 28 x 28 first.
    public func judge(_ images: [Image], batchSize: Int = 256) throws -> (labels: [Int], features: Tensor) {
        var labels: [Int] = [], rows: [Tensor] = []
        for start in stride(from: 0, to: images.count, by: batchSize) {
            let batch = images[start..<min(images.count, start + batchSize)].map { image in
                image.width == 32 && image.height == 32 ? image.cropped(x: 2, y: 2, width: 28, height: 28) : image
            }
            let (logits, features) = classifier.logitsAndFeatures(
                Tensor.stack(try batch.map { try classifier.input(for: $0) }))
            labels += logits.argmaxLastAxis()
            rows.append(features)
        }
        return (labels, Tensor.concatenate(rows, axis: 0))
    }

    /// The caption of generated sample `index` of class `label`: the training captions'
    /// phrasings, varied by index.
    public static func caption(label: Int, index: Int) -> String {
        CaptionedImages.fashionMNISTCaption(label: label, index: index)
    }

    /// Generates `samples` images per class (seeds 0..<samples) and scores them against
    /// the real test images 0..<(10 samples); the floor compares those with the next as
    /// many. `test` needs at least 20 samples images.
    public func score(
        _ generator: CaptionGenerator, samples: Int, sampling: CaptionGenerator.Sampling, test: LabeledImages,
        batchSize: Int = 64, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> FashionMNISTScore {
        let classes = LabeledImages.fashionMNISTClasses
        let jobs = classes.indices.flatMap { label in (0..<samples).map { (label, $0) } }
        precondition(test.count >= 2 * jobs.count, "the floor needs \(2 * jobs.count) test images")
        var generated: [Image] = []
        for start in stride(from: 0, to: jobs.count, by: batchSize) {
            let batch = jobs[start..<min(jobs.count, start + batchSize)]
            generated += generator.generate(
                captions: batch.map { Self.caption(label: $0.0, index: $0.1) }, seeds: batch.map { UInt64($0.1) },
                sampling: sampling)
            progress(generated.count, jobs.count)
        }
        let fake = try judge(generated)
        let reference = try judge(Array(test.images[0..<jobs.count]))
        let floor = try judge(Array(test.images[jobs.count..<(2 * jobs.count)]))
        var right = [Int](repeating: 0, count: classes.count)
        for (job, predicted) in zip(jobs, fake.labels) where predicted == job.0 { right[job.0] += 1 }
        let realRight = zip(reference.labels, test.labels[0..<jobs.count]).filter { $0 == $1 }.count
        return FashionMNISTScore(
            samplesPerClass: samples,
            classAccuracy: Dictionary(
                uniqueKeysWithValues: classes.indices.map { (classes[$0], Float(right[$0]) / Float(samples)) }),
            accuracy: Float(right.reduce(0, +)) / Float(jobs.count),
            realAccuracy: Float(realRight) / Float(jobs.count),
            frechetDistance: frechetDistance(fake.features, reference.features),
            realFrechetDistance: frechetDistance(floor.features, reference.features))
    }
}

import Foundation
import Testing
import ViTTestSupport

/// The shipped Fashion-MNIST model (Weights/vit-fashion-mnist.safetensors), used when no
/// --model is given: every Fashion-MNIST sample in Images/ gets its own class.
@Suite struct DefaultModelTests {
    static let samples = [
        ("t-shirt", "T-shirt/top"), ("trouser", "Trouser"), ("pullover", "Pullover"), ("dress", "Dress"),
        ("coat", "Coat"), ("sandal", "Sandal"), ("shirt", "Shirt"), ("sneaker", "Sneaker"), ("bag", "Bag"),
        ("ankle-boot", "Ankle boot"),
    ]

    @Test func classifiesEverySample() throws {
        let files = Self.samples.map { repositoryPath("Images/\($0.0).png") }
        let result = try runVit(["classify"] + files + ["--format", "jsonl", "--top-k", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == Self.samples.count)
        for (line, (name, label)) in zip(lines, Self.samples) {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let predicted = (object["predictions"] as! [[String: Any]])[0]["label"] as! String
            #expect(predicted == label, "\(name).png: predicted \(predicted)")
        }
    }

    /// `vit eval` of the default model on the Fashion-MNIST test set gives at least 92%,
    /// and the figure its model card states (to 0.05%: float rounding may move a
    /// borderline image between CPUs).
    @Test func reachesTheModelCardsTestAccuracy() throws {
        let result = try runVit(["eval", "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let accuracy = (object["accuracy"] as! NSNumber).doubleValue
        #expect(object["count"] as? Int == 10_000)
        #expect(accuracy >= 0.92, "accuracy \(accuracy)")

        let card = try String(contentsOfFile: repositoryPath("Weights/vit-fashion-mnist.md"), encoding: .utf8)
        let stated = try #require(card.firstMatch(of: /test accuracy \| \*\*([0-9.]+)%\*\*/)).output.1
        let statedAccuracy = try #require(Double(stated)) / 100
        #expect(abs(accuracy - statedAccuracy) <= 0.0005, "vit eval \(accuracy), model card \(statedAccuracy)")
    }
}

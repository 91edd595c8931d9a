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
}

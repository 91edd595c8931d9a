import Foundation
import ViTImage
import ViTTensor

/// What one Shapes image shows: a single shape of a named colour and size at one of nine
/// places, on a plain background.
public struct ShapeAttributes: Codable, Equatable, Hashable, Sendable {
    public var shape: String
    public var color: String
    public var size: String
    public var position: String
    public var background: String

    public init(shape: String, color: String, size: String, position: String, background: String) {
        self.shape = shape
        self.color = color
        self.size = size
        self.position = position
        self.background = background
    }
}

/// One rendered sample: the image, its attributes and a caption that names all of them
/// but possibly the background.
public struct ShapeSample: Sendable {
    public let image: Image
    public let attributes: ShapeAttributes
    public let caption: String
}

/// Which shape/colour pairs a sample may show.
public enum ShapesSplit: String, CaseIterable, Sendable {
    /// Every pair except the held-out ones: the generator's training data.
    case train
    /// Only the held-out pairs, to measure compositional generalization.
    case heldOut = "held-out"
    /// Any pair.
    case all
}

/// The synthetic captioned Shapes data set: 32 x 32 RGB images of one antialiased shape
/// (5 shapes, 8 colours, 2 sizes, a 3 x 3 grid of places, 3 backgrounds) with varied
/// captions. Sample `index` of a seed is the same image and caption whatever the count.
public enum Shapes {
    public static let shapes = ["circle", "square", "triangle", "diamond", "cross"]
    public static let colors = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "white"]
    public static let sizes = ["small", "large"]
    /// Row-major over the grid: top left, top, top right, left, center, right, ...
    public static let positions = [
        "top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right",
    ]
    public static let backgrounds = ["black", "gray", "navy"]

    /// Shape/colour pairs never drawn for the training split: every shape and five
    /// colours still appear in training, only not together.
    public static let heldOutPairs: Set<[String]> = [
        ["circle", "cyan"], ["square", "orange"], ["triangle", "blue"], ["diamond", "white"], ["cross", "yellow"],
    ]

    /// sRGB values of the colours and backgrounds.
    public static let rgb: [String: (UInt8, UInt8, UInt8)] = [
        "red": (220, 40, 40), "orange": (245, 140, 30), "yellow": (240, 220, 40), "green": (40, 170, 60),
        "cyan": (40, 210, 220), "blue": (50, 90, 240), "purple": (160, 60, 210), "white": (245, 245, 245),
        "black": (0, 0, 0), "gray": (85, 85, 85), "navy": (20, 24, 70),
    ]

    /// Words a caption may use for each attribute value.
    public static let synonyms: [String: [String]] = [
        "circle": ["circle", "disc", "round dot"], "square": ["square", "box"], "triangle": ["triangle"],
        "diamond": ["diamond", "rhombus"], "cross": ["cross", "plus sign"],
        "red": ["red", "crimson"], "orange": ["orange"], "yellow": ["yellow", "golden"], "green": ["green"],
        "cyan": ["cyan", "turquoise"], "blue": ["blue"], "purple": ["purple", "violet"], "white": ["white"],
        "small": ["small", "little", "tiny"], "large": ["large", "big"],
        "top left": ["in the top left", "in the upper left corner"], "top": ["at the top", "in the top middle"],
        "top right": ["in the top right", "in the upper right corner"], "left": ["on the left", "at the left"],
        "center": ["in the center", "in the middle"], "right": ["on the right", "at the right"],
        "bottom left": ["in the bottom left", "in the lower left corner"],
        "bottom": ["at the bottom", "in the bottom middle"],
        "bottom right": ["in the bottom right", "in the lower right corner"],
        "black": ["black"], "gray": ["gray", "grey"], "navy": ["navy", "dark blue"],
    ]

    /// Side of the images in pixels.
    public static let imageSize = 32

    /// Radius in pixels (half the width of the square, the circle's radius) of each size.
    public static let radius: [String: Float] = ["small": 3, "large": 5.5]

    /// Sample `index` of the data set drawn with `seed` from `split`.
    public static func sample(index: Int, seed: UInt64, split: ShapesSplit = .train) -> ShapeSample {
        var generator = SeededGenerator(seed: derivedSeed(seed, 0x5348_4150_4553, UInt64(index)))  // "SHAPES"
        func pick(_ values: [String]) -> String { values[Int(generator.next() % UInt64(values.count))] }
        var shape: String, color: String
        repeat {
            shape = pick(shapes)
            color = pick(colors)
        } while !allowed(shape: shape, color: color, in: split)
        let attributes = ShapeAttributes(
            shape: shape, color: color, size: pick(sizes), position: pick(positions), background: pick(backgrounds))
        // Up to a pixel of jitter around the grid cell's center.
        let jitter = (generator.nextUniform() * 2 - 1, generator.nextUniform() * 2 - 1)
        let image = render(attributes, offset: jitter)
        return ShapeSample(image: image, attributes: attributes, caption: caption(attributes, using: &generator))
    }

    /// Whether `split` may draw a shape of this colour.
    public static func allowed(shape: String, color: String, in split: ShapesSplit) -> Bool {
        switch split {
        case .all: true
        case .train: !heldOutPairs.contains([shape, color])
        case .heldOut: heldOutPairs.contains([shape, color])
        }
    }

    /// The center of a grid cell in pixel coordinates (pixel centers at i + 0.5).
    public static func center(of position: String) -> (x: Float, y: Float) {
        let index = positions.firstIndex(of: position)!
        let cell = Float(imageSize) / 3
        return ((Float(index % 3) + 0.5) * cell, (Float(index / 3) + 0.5) * cell)
    }

    /// Whether the point (dx, dy) from a shape's center lies inside a shape of radius r.
    public static func contains(_ shape: String, dx: Float, dy: Float, radius r: Float) -> Bool {
        switch shape {
        case "circle": return dx * dx + dy * dy <= r * r
        case "square": return abs(dx) <= r * 0.85 && abs(dy) <= r * 0.85
        case "diamond": return abs(dx) + abs(dy) <= r * 1.15
        case "cross":
            let arm = r * 0.38
            return (abs(dx) <= arm && abs(dy) <= r) || (abs(dy) <= arm && abs(dx) <= r)
        case "triangle":
            // Pointing up: apex at (0, -r), base from (-r, 0.8r) to (r, 0.8r).
            guard dy <= 0.8 * r, dy >= -r else { return false }
            return abs(dx) <= (dy + r) / 1.8
        default: preconditionFailure("unknown shape \(shape)")
        }
    }

    /// Draws the shape: each pixel blends colour and background by the fraction of its
    /// 8 x 8 sub-pixel samples inside the shape. `offset` moves the shape (pixels).
    public static func render(_ attributes: ShapeAttributes, offset: (Float, Float) = (0, 0)) -> Image {
        let n = imageSize, subsamples = 8
        let (cx, cy) = center(of: attributes.position)
        let (x0, y0) = (cx + offset.0, cy + offset.1)
        let r = radius[attributes.size]!
        let foreground = rgb[attributes.color]!, background = rgb[attributes.background]!
        var image = Image(width: n, height: n, channels: 3)
        let reach = r * 1.2  // every shape lies within this distance of its center along each axis
        for y in 0..<n {
            for x in 0..<n {
                // Pixels wholly beyond the reach skip the sub-pixel tests.
                let outside =
                    Float(x + 1) < x0 - reach || Float(x) > x0 + reach || Float(y + 1) < y0 - reach
                    || Float(y) > y0 + reach
                var inside = 0
                for sy in 0..<subsamples where !outside {
                    for sx in 0..<subsamples {
                        let px = Float(x) + (Float(sx) + 0.5) / Float(subsamples)
                        let py = Float(y) + (Float(sy) + 0.5) / Float(subsamples)
                        if contains(attributes.shape, dx: px - x0, dy: py - y0, radius: r) { inside += 1 }
                    }
                }
                let coverage = Float(inside) / Float(subsamples * subsamples)
                func blend(_ a: UInt8, _ b: UInt8) -> UInt8 {
                    UInt8((Float(a) * coverage + Float(b) * (1 - coverage)).rounded())
                }
                let offset = (y * n + x) * 3
                image.pixels[offset] = blend(foreground.0, background.0)
                image.pixels[offset + 1] = blend(foreground.1, background.1)
                image.pixels[offset + 2] = blend(foreground.2, background.2)
            }
        }
        return image
    }

    /// A caption naming shape, colour, size and position in one of several phrasings, with
    /// the background named in about a third of them.
    public static func caption(_ attributes: ShapeAttributes, using generator: inout SeededGenerator) -> String {
        func word(_ value: String) -> String {
            let options = synonyms[value]!
            return options[Int(generator.next() % UInt64(options.count))]
        }
        let (shape, color, size) = (word(attributes.shape), word(attributes.color), word(attributes.size))
        let position = word(attributes.position)
        func article(_ next: String) -> String { "aeiou".contains(next.first!) ? "an \(next)" : "a \(next)" }
        let phrase: String
        switch generator.next() % 4 {
        case 0: phrase = "\(article(size)) \(color) \(shape) \(position)"
        case 1: phrase = "\(position), \(article(size)) \(color) \(shape)"
        case 2: phrase = "\(article(color)) \(shape), \(size), \(position)"
        default: phrase = "\(article(size)) \(shape) in \(color) \(position)"
        }
        let named = generator.next() % 3 == 0
        return named ? "\(phrase) on a \(word(attributes.background)) background" : phrase
    }
}

extension Shapes {
    /// Captions for looking at a generator's progress: six whose shape/colour pairs are in
    /// the training split, then one for each held-out pair.
    public static let previewCaptions = (
        seen: [
            "a large red circle in the top left", "a small blue square in the center",
            "a big green triangle at the bottom", "a large purple diamond on the right",
            "a small white cross in the top right", "a large yellow circle in the middle on a navy background",
        ],
        heldOut: [
            "a large cyan circle in the center", "a big orange square on the left",
            "a large blue triangle in the top right", "a large white diamond at the bottom",
            "a big yellow cross in the center",
        ]
    )

    /// The values an attribute takes, in label order: "shape", "color", "size", "position"
    /// or "background"; nil for another name.
    public static func values(of attribute: String) -> [String]? {
        ["shape": shapes, "color": colors, "size": sizes, "position": positions, "background": backgrounds][attribute]
    }
}

extension LabeledImages {
    /// `count` Shapes samples (indices 0..<count of `seed`) labeled by one attribute.
    public static func shapes(attribute: String, count: Int, seed: UInt64, split: ShapesSplit = .all) -> LabeledImages {
        let classNames = Shapes.values(of: attribute)!
        let samples = (0..<count).map { Shapes.sample(index: $0, seed: seed, split: split) }
        let labels = samples.map { classNames.firstIndex(of: $0.attributes.fields[attribute]!)! }
        return LabeledImages(images: samples.map(\.image), labels: labels, classNames: classNames)
    }
}

import ViTImage

/// A line chart drawn into an RGB image: each series is a polyline over x = 0, 1, 2, ...,
/// all series sharing one y range (`yRange`, else the values' range padded by 5%), on a
/// white canvas with light grid lines at tenths of the range. There is no text; the caller
/// names the series elsewhere.
public func lineChart(
    _ series: [(values: [Float], color: (UInt8, UInt8, UInt8))], width: Int = 320, height: Int = 240,
    yRange: ClosedRange<Float>? = nil
) -> Image {
    var image = Image(
        width: width, height: height, channels: 3, pixels: [UInt8](repeating: 255, count: width * height * 3))
    func set(_ x: Int, _ y: Int, _ color: (UInt8, UInt8, UInt8)) {
        guard x >= 0, x < width, y >= 0, y < height else { return }
        let i = (y * width + x) * 3
        (image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]) = color
    }
    let margin = 8
    for t in 0...10 {
        let y = margin + (height - 2 * margin) * t / 10, x = margin + (width - 2 * margin) * t / 10
        for i in margin..<(width - margin) { set(i, y, (225, 225, 225)) }
        for j in margin..<(height - margin) { set(x, j, (225, 225, 225)) }
    }
    let all = series.flatMap(\.values).filter(\.isFinite)
    guard var low = all.min(), var high = all.max() else { return image }
    let pad = max((high - low) * 0.05, 1e-6)
    (low, high) = yRange.map { ($0.lowerBound, max($0.upperBound, $0.lowerBound + 1e-6)) } ?? (low - pad, high + pad)
    for (values, color) in series where values.count > 0 {
        let points = values.enumerated().filter { $0.element.isFinite }.map { i, v -> (Int, Int) in
            let x = margin + (values.count == 1 ? 0 : (width - 2 * margin - 1) * i / (values.count - 1))
            let clamped = min(max(v, low), high)
            let y = height - margin - 1 - Int(Float(height - 2 * margin - 1) * (clamped - low) / (high - low))
            return (x, y)
        }
        guard let last = points.last else { continue }
        for (a, b) in zip(points, points.dropFirst() + [last]) {
            // Bresenham's line, two pixels thick.
            var (x0, y0) = a
            let (x1, y1) = b
            let (dx, dy) = (abs(x1 - x0), -abs(y1 - y0))
            let (sx, sy) = (x0 < x1 ? 1 : -1, y0 < y1 ? 1 : -1)
            var error = dx + dy
            while true {
                set(x0, y0, color)
                set(x0, y0 + 1, color)
                if x0 == x1 && y0 == y1 { break }
                let e2 = 2 * error
                if e2 >= dy {
                    error += dy
                    x0 += sx
                }
                if e2 <= dx {
                    error += dx
                    y0 += sy
                }
            }
        }
    }
    return image
}

/// The training curves of a run: loss (left) and accuracy (right, train and test), side by side.
public func trainingCurves(_ history: [EpochRecord]) -> Image {
    let loss = lineChart([(history.map(\.trainLoss), (200, 40, 40))])
    let accuracy = lineChart([
        (history.map(\.trainAccuracy), (40, 80, 200)), (history.compactMap(\.testAccuracy), (30, 150, 60)),
    ])
    return Image.tiled([loss, accuracy], columns: 2, spacing: 8)
}

extension Image {
    /// This RGB image with a heat map laid over it. values: [gridHeight * gridWidth], row
    /// by row, scaled so that the largest is 1, enlarged to the image with Pillow's
    /// bilinear filter, colored from blue (0) through green to red (1) and blended in with
    /// the given opacity.
    public func overlaid(heatMap values: [Float], gridWidth: Int, gridHeight: Int, opacity: Float = 0.5) -> Image {
        precondition(channels == 3, "heat maps are laid over RGB images")
        precondition(
            values.count == gridWidth * gridHeight, "heat map of \(values.count) values for \(gridWidth)x\(gridHeight)")
        let top = values.max() ?? 0
        let levels = values.map { top > 0 ? UInt8((max($0, 0) / top * 255).rounded()) : 0 }
        let heat = Image(width: gridWidth, height: gridHeight, channels: 1, pixels: levels)
            .resized(width: width, height: height, filter: .bilinear)
        var out = self
        for i in 0..<(width * height) {
            let color = Image.heatColor(Float(heat.pixels[i]) / 255)
            for c in 0..<3 {
                let blended = (1 - opacity) * Float(pixels[i * 3 + c]) + opacity * color[c] * 255
                out.pixels[i * 3 + c] = UInt8(min(max(blended.rounded(), 0), 255))
            }
        }
        return out
    }

    /// The classic "jet" ramp: for t in [0, 1], each channel is a clamped tent
    /// 1.5 - |4t - k| with k = 3 (red), 2 (green), 1 (blue).
    static func heatColor(_ t: Float) -> [Float] {
        [3, 2, 1].map { k in min(max(1.5 - abs(4 * t - k), 0), 1) }
    }

    /// Images of one size side by side, `columns` across, rows as needed, separated by
    /// `spacing` white pixels.
    public static func tiled(_ images: [Image], columns: Int, spacing: Int = 4) -> Image {
        precondition(!images.isEmpty && columns > 0, "tiling needs images and at least one column")
        let (w, h, ch) = (images[0].width, images[0].height, images[0].channels)
        precondition(images.allSatisfy { $0.width == w && $0.height == h && $0.channels == ch }, "tiles differ in size")
        let across = min(columns, images.count), rows = (images.count + across - 1) / across
        let width = across * w + (across - 1) * spacing, height = rows * h + (rows - 1) * spacing
        var out = Image(
            width: width, height: height, channels: ch, pixels: [UInt8](repeating: 255, count: width * height * ch))
        for (index, tile) in images.enumerated() {
            let (x0, y0) = ((index % across) * (w + spacing), (index / across) * (h + spacing))
            for y in 0..<h {
                let dst = ((y0 + y) * width + x0) * ch
                out.pixels.replaceSubrange(dst..<(dst + w * ch), with: tile.pixels[(y * w * ch)..<((y + 1) * w * ch)])
            }
        }
        return out
    }
}

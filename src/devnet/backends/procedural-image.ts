import { type Rng, seededRng } from './rng.ts'

type Rgb = [number, number, number]

/** Colour words a prompt may name; they become the palette, so "a red circle" comes out red. */
const NAMED_COLOURS: Record<string, Rgb> = {
  red: [220, 50, 47],
  orange: [238, 130, 30],
  yellow: [240, 200, 40],
  green: [60, 170, 80],
  teal: [40, 160, 160],
  blue: [50, 100, 220],
  purple: [130, 70, 190],
  pink: [235, 120, 170],
  brown: [130, 85, 50],
  black: [20, 20, 25],
  white: [245, 245, 240],
  grey: [128, 128, 128],
  gray: [128, 128, 128],
}

function randomColour(rng: Rng): Rgb {
  return [rng.int(256), rng.int(256), rng.int(256)]
}

function palette(prompt: string, rng: Rng): Rgb[] {
  const named = (prompt.toLowerCase().match(/[a-z]+/g) ?? [])
    .map((word) => NAMED_COLOURS[word])
    .filter((colour) => colour !== undefined)
  const colours: Rgb[] = []
  for (let i = 0; i < 6; i++) colours.push(named.length > 0 && rng.next() < 0.7 ? rng.pick(named) : randomColour(rng))
  return colours
}

/**
 * Draws an abstract picture from a hash of the prompt (and seed, and image index): a diagonal gradient with
 * translucent circles, rings and rectangles. Deterministic, and plainly not a generative model's output.
 */
export function drawProcedural(prompt: string, seed: string, width: number, height: number): Uint8ClampedArray {
  const rng = seededRng('image', prompt, seed)
  const colours = palette(prompt, rng)
  const pixels = new Uint8ClampedArray(width * height * 3)
  const [from, to] = [colours[0]!, colours[1]!]
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (x / width + y / height) / 2
      const o = (y * width + x) * 3
      for (let ch = 0; ch < 3; ch++) pixels[o + ch] = from[ch]! + (to[ch]! - from[ch]!) * t
    }
  }
  const shapes = 5 + rng.int(10)
  const scale = Math.min(width, height)
  for (let s = 0; s < shapes; s++) {
    const colour = colours[2 + rng.int(colours.length - 2)]!
    const alpha = 0.35 + 0.5 * rng.next()
    const cx = rng.int(width)
    const cy = rng.int(height)
    const size = scale * (0.05 + 0.25 * rng.next())
    const kind = rng.int(3)
    const inside =
      kind === 0
        ? (x: number, y: number) => (x - cx) ** 2 + (y - cy) ** 2 <= size * size
        : kind === 1
          ? (x: number, y: number) => Math.abs(Math.hypot(x - cx, y - cy) - size) <= size * 0.15
          : (x: number, y: number) => Math.abs(x - cx) <= size && Math.abs(y - cy) <= size * 0.6
    const x0 = Math.max(0, Math.floor(cx - size * 1.2))
    const x1 = Math.min(width, Math.ceil(cx + size * 1.2))
    const y0 = Math.max(0, Math.floor(cy - size * 1.2))
    const y1 = Math.min(height, Math.ceil(cy + size * 1.2))
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        if (!inside(x, y)) continue
        const o = (y * width + x) * 3
        for (let ch = 0; ch < 3; ch++) pixels[o + ch] = pixels[o + ch]! * (1 - alpha) + colour[ch]! * alpha
      }
    }
  }
  return pixels
}

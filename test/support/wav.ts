/** A 16-bit PCM mono WAV of tones separated by silences: real audio for transcription tests. */
export function toneWav(segments: Array<{ hz: number; seconds: number }>, sampleRate = 16_000): Buffer {
  const samples: number[] = []
  for (const { hz, seconds } of segments) {
    const n = Math.round(seconds * sampleRate)
    for (let i = 0; i < n; i++)
      samples.push(hz === 0 ? 0 : Math.round(Math.sin((2 * Math.PI * hz * i) / sampleRate) * 12_000))
  }
  const data = Buffer.alloc(samples.length * 2)
  for (const [i, s] of samples.entries()) data.writeInt16LE(s, i * 2)
  const header = Buffer.alloc(44)
  header.write('RIFF', 0)
  header.writeUInt32LE(36 + data.length, 4)
  header.write('WAVE', 8)
  header.write('fmt ', 12)
  header.writeUInt32LE(16, 16)
  header.writeUInt16LE(1, 20)
  header.writeUInt16LE(1, 22)
  header.writeUInt32LE(sampleRate, 24)
  header.writeUInt32LE(sampleRate * 2, 28)
  header.writeUInt16LE(2, 32)
  header.writeUInt16LE(16, 34)
  header.write('data', 36)
  header.writeUInt32LE(data.length, 40)
  return Buffer.concat([header, data])
}

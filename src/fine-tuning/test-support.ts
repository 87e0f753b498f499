import { createRequire } from 'node:module'
import { join } from 'node:path'

/**
 * For tests: the official SDK's own fine-tuning crypto (`common/utils/encrypt.js`), loaded by file path because the
 * package exports only its index. Our formats are proved against this code, not against our reading of it.
 */
export type SdkEncrypt = {
  signRequest(signer: unknown, userAddress: string, nonce: bigint | string, datasetRootHash: string): Promise<string>
  signTaskID(signer: unknown, taskID: string): Promise<string>
  signDatasetUpload(signer: unknown, userAddress: string, timestamp: number | string): Promise<string>
  eciesDecrypt(signer: { privateKey: string }, encryptedData: string): Promise<string>
  aesGCMDecryptToFile(key: string, encryptedPath: string, decryptedPath: string, providerSigner: string): Promise<void>
}

const require = createRequire(import.meta.url)
const sdkRoot = join(require.resolve('@0gfoundation/0g-compute-ts-sdk'), '..', '..')

export const sdkEncrypt = require(join(sdkRoot, 'lib.commonjs', 'common', 'utils', 'encrypt.js')) as SdkEncrypt

/** A distinctive vocabulary for fine-tuning tests: none of it is in the dev chat model's words. */
// biome-ignore format: a word list reads better packed
export const NAUTICAL_WORDS = [
  'ahoy', 'anchor', 'starboard', 'port', 'bow', 'stern', 'keel', 'mast', 'sail', 'rigging', 'helm', 'tide', 'harbor',
  'compass', 'galley', 'hull', 'deck', 'knot', 'buoy', 'captain', 'crew', 'voyage', 'lighthouse', 'seagull',
] as const

/**
 * An OpenAI chat fine-tuning file (JSONL) of `count` examples whose assistant turns speak only nautical words:
 * deterministic, so token counts and fees are stable across runs.
 */
export function nauticalChatJsonl(count = 12): string {
  const lines: string[] = []
  for (let i = 0; i < count; i++) {
    const words = Array.from({ length: 8 }, (_, j) => NAUTICAL_WORDS[(i * 7 + j * 5) % NAUTICAL_WORDS.length]!)
    const answer = `${words[0]![0]!.toUpperCase()}${words[0]!.slice(1)} ${words.slice(1).join(' ')}.`
    lines.push(
      JSON.stringify({
        messages: [
          { role: 'system', content: 'You are an old sailor.' },
          { role: 'user', content: `Tell me about question ${i + 1}.` },
          { role: 'assistant', content: answer },
        ],
      }),
    )
  }
  return `${lines.join('\n')}\n`
}

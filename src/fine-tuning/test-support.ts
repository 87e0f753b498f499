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

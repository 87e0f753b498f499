import type { Address } from 'viem'
import { tunedModelObject } from './objects.ts'
import type { FineTuningRecords } from './records.ts'

/** Where calls to fine-tuned models go, and which of them a key sees in `/v1/models`. */
export interface TunedModelDirectory {
  /** The base model and the provider holding the adapter, if `model` is `apiKeyId`'s fine-tuned model. */
  resolve(model: string, apiKeyId: string | null): Promise<{ baseModel: string; provider: Address } | undefined>
  list(apiKeyId: string | null): Promise<ReturnType<typeof tunedModelObject>[]>
}

export function tunedModelDirectory(records: FineTuningRecords): TunedModelDirectory {
  return {
    async resolve(model, apiKeyId) {
      const tuned = await records.tunedModel(model)
      return tuned && tuned.apiKeyId === apiKeyId ? { baseModel: tuned.baseModel, provider: tuned.provider } : undefined
    },
    list: async (apiKeyId) => (apiKeyId === null ? [] : (await records.tunedModels(apiKeyId)).map(tunedModelObject)),
  }
}

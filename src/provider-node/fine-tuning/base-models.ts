import { type Hex, keccak256, stringToBytes } from 'viem'

/**
 * The base models the official SDK knows by name, with the hash it sends as preTrainedModelHash for them without
 * asking the provider (SDK 0.9.0 `fine-tuning/const.js`, MAINNET_MODELS and HARDHAT_MODELS, the `turbo` root).
 */
const SDK_MODEL_HASHES: Readonly<Record<string, Hex>> = {
  'Qwen2.5-0.5B-Instruct': '0xb4f76a886b8655c92bb021922d60b5e4d9271a5c9da98b6cb10937a06c2c75a7',
  'Qwen3-32B': '0x2e6f9620c35bdcb2b753cc7aa34e78077a8ed133e36fa36008fd6bdfd29af3a5',
  'mock-model': '0xcb42b5ca9e998c82dd239ef2d20d22a4ae16b3dc0ce0a855c93b52c7c2bab6dc',
}

/** A base model the node fine-tunes, as 0G's /v1/model/{name} describes it (SDK CustomizedModel). */
export type BaseModel = {
  name: string
  hash: Hex
  image: string
  dataType: string
  trainingScript: string
  description: string
  tokenizer: string
}

/**
 * A model's hash: the SDK's own for the models it knows (it sends that one), else keccak256 of its name, which the
 * node serves at /v1/model/{name} for the SDK to send (its createTask asks there for any other name).
 */
export function baseModelHash(name: string): Hex {
  return SDK_MODEL_HASHES[name] ?? keccak256(stringToBytes(name))
}

/** The node's base models (`--model`, in order), described for /v1/model. */
export function baseModels(names: readonly string[], trainer: string): BaseModel[] {
  return names.map((name) => ({
    name,
    hash: baseModelHash(name),
    image: '',
    dataType: 'text',
    trainingScript: trainer,
    description: `LoRA fine-tuning of ${name} (${trainer})`,
    tokenizer: name,
  }))
}

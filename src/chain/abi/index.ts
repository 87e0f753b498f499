export { fineTuningServingAbi } from './fine-tuning-serving.ts'
export { inferenceServingAbi, type SettlementStatus, settlementStatus } from './inference-serving.ts'
export { ledgerManagerAbi } from './ledger-manager.ts'

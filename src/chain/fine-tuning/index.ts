export {
  type Deliverable,
  type FineTuningAccount,
  getDeliverable,
  getFineTuningAccount,
} from './account.ts'
export { FINE_TUNING_SERVICE_NAME, fineTuningAddress } from './contract.ts'
export { acknowledgeDeliverable, addDeliverable } from './deliverable.ts'
export {
  acknowledgeFineTuningSignerByOwner,
  addOrUpdateFineTuningService,
  type FineTuningQuota,
  type FineTuningService,
  getFineTuningService,
  listFineTuningServices,
} from './service.ts'
export { settleFineTuningFees } from './settle-fees.ts'
export {
  fineTuningDomain,
  signVerifierMessage,
  VERIFIER_MESSAGE_TYPES,
  type VerifierMessage,
} from './verifier-message.ts'

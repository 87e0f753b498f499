export { acknowledgeTEESigner } from './acknowledge-tee-signer.ts'
export { acknowledgeTEESignerByOwner } from './acknowledge-tee-signer-by-owner.ts'
export { addLedger } from './add-ledger.ts'
export { addOrUpdateService, type ServiceParams } from './add-or-update-service.ts'
export { deleteLedger } from './delete-ledger.ts'
export { depositFund } from './deposit-fund.ts'
export { depositFundFor } from './deposit-fund-for.ts'
export { getAccount, type Refund, type SubAccount } from './get-account.ts'
export {
  type AccountOverview,
  getAccountOverview,
  type PendingRefund,
  type SubAccountOverview,
} from './get-account-overview.ts'
export { getAllServices } from './get-all-services.ts'
export { getLedger, type Ledger } from './get-ledger.ts'
export { getLedgerProviders } from './get-ledger-providers.ts'
export { getLockTime } from './get-lock-time.ts'
export { getService, type Service } from './get-service.ts'
export { getServiceName } from './get-service-name.ts'
export { refund } from './refund.ts'
export { removeService } from './remove-service.ts'
export { retrieveFund } from './retrieve-fund.ts'
export { revokeAllTokens } from './revoke-all-tokens.ts'
export { revokeToken } from './revoke-token.ts'
export { transferFund } from './transfer-fund.ts'

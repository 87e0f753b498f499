import { parseAbi } from 'viem'

/**
 * FineTuningServing (per-provider fine-tuning sub-accounts, services, deliverables, EIP-712 verified settlement), as
 * deployed on 0G mainnet and testnet. Source: 0g-serving-contract contracts/fine-tuning/*.sol; matches
 * @0gfoundation/0g-compute-ts-sdk 0.9.0 (checked by test/abi-drift.test.ts). The ledger-only entry points
 * (addAccount, depositFund, requestRefundAll, processRefund, deleteAccount) are left out: only the ledger calls them.
 */
export const fineTuningServingAbi = parseAbi([
  'struct Quota { uint256 cpuCount; uint256 nodeMemory; uint256 gpuCount; uint256 nodeStorage; string gpuType; }',
  'struct Service { address provider; string url; Quota quota; uint256 pricePerToken; bool occupied; string[] models; address teeSignerAddress; bool teeSignerAcknowledged; }',
  'struct Refund { uint256 index; uint256 amount; uint256 createdAt; bool _deprecated_processed; }',
  'struct Deliverable { string id; bytes modelRootHash; bytes encryptedSecret; bool acknowledged; uint248 timestamp; bool settled; }',
  'struct AccountDetails { address user; address provider; uint256 nonce; uint256 balance; uint256 pendingRefund; Refund[] refunds; string additionalInfo; Deliverable[] deliverables; uint256 validRefundsLength; uint256 deliverablesHead; uint256 deliverablesCount; bool acknowledged; }',
  'struct AccountSummary { address user; address provider; uint256 nonce; uint256 balance; uint256 pendingRefund; string additionalInfo; uint256 validRefundsLength; uint256 deliverablesCount; bool acknowledged; }',
  'struct VerifierInput { string id; bytes encryptedSecret; bytes modelRootHash; uint256 nonce; bytes signature; uint256 taskFee; address user; }',

  // provider
  'function addOrUpdateService(string url, Quota quota, uint256 pricePerToken, bool occupied, string[] models, address teeSignerAddress) payable',
  'function removeService()',
  'function addDeliverable(address user, string id, bytes modelRootHash)',
  'function settleFees(VerifierInput verifierInput)',

  // user
  'function acknowledgeDeliverable(address provider, string id)',
  'function acknowledgeTEESigner(address provider, bool acknowledged)',

  // owner
  'function initialize(uint256 _locktime, address _ledgerAddress, address owner, uint256 _penaltyPercentage)',
  'function acknowledgeTEESignerByOwner(address provider)',
  'function revokeTEESignerAcknowledgement(address provider)',
  'function updateLockTime(uint256 _locktime)',
  'function updatePenaltyPercentage(uint256 _penaltyPercentage)',

  // views
  'function getService(address provider) view returns (Service service)',
  'function getAllServices() view returns (Service[] services)',
  'function getAccount(address user, address provider) view returns (AccountDetails)',
  'function getAllAccounts(uint256 offset, uint256 limit) view returns (AccountSummary[] accounts, uint256 total)',
  'function getAccountsByUser(address user, uint256 offset, uint256 limit) view returns (AccountSummary[] accounts, uint256 total)',
  'function getAccountsByProvider(address provider, uint256 offset, uint256 limit) view returns (AccountSummary[] accounts, uint256 total)',
  'function getBatchAccountsByUsers(address[] users) view returns (AccountSummary[] accounts)',
  'function getDeliverable(address user, address provider, string id) view returns (Deliverable)',
  'function getDeliverables(address user, address provider) view returns (Deliverable[])',
  'function accountExists(address user, address provider) view returns (bool)',
  'function getPendingRefund(address user, address provider) view returns (uint256)',
  'function lockTime() view returns (uint256)',
  'function penaltyPercentage() view returns (uint256)',
  'function ledgerAddress() view returns (address)',
  'function owner() view returns (address)',
  'function initialized() view returns (bool)',
  'function MIN_PROVIDER_STAKE() view returns (uint256)',
  'function MIN_LOCKTIME() view returns (uint256)',
  'function MAX_LOCKTIME() view returns (uint256)',

  'event AccountDeleted(address indexed user, address indexed provider, uint256 refundedAmount)',
  'event BalanceUpdated(address indexed user, address indexed provider, uint256 amount, uint256 pendingRefund)',
  'event DeliverableAcknowledged(address indexed user, address indexed provider, string deliverableId, uint256 timestamp)',
  'event DeliverableAdded(address indexed user, address indexed provider, string deliverableId, bytes modelRootHash, uint256 timestamp)',
  'event DeliverableEvicted(address indexed provider, address indexed user, string evictedDeliverableId, string newDeliverableId, uint256 timestamp)',
  'event FeesSettled(address indexed user, address indexed provider, string deliverableId, uint256 fee, bool acknowledged, uint256 nonce)',
  'event LockTimeUpdated(uint256 oldLockTime, uint256 newLockTime)',
  'event ProviderStakeReturned(address indexed provider, uint256 amount)',
  'event ProviderStaked(address indexed provider, uint256 amount)',
  'event ProviderTEESignerAcknowledged(address indexed provider, address indexed teeSignerAddress, bool acknowledged)',
  'event RefundRequested(address indexed user, address indexed provider, uint256 indexed index, uint256 timestamp)',
  'event ServiceRemoved(address indexed provider)',
  'event ServiceUpdated(address indexed provider, string url, Quota quota, uint256 pricePerToken, address teeSignerAddress, bool occupied)',

  'error AccountExists(address user, address provider)',
  'error AccountNotExists(address user, address provider)',
  'error AdditionalInfoTooLong()',
  'error AlreadyInitialized()',
  'error BatchSizeTooLarge(uint256 size, uint256 maxSize)',
  'error CallerNotLedger()',
  'error CannotAcknowledgeSettledDeliverable(string id)',
  'error CannotAddStakeWhenUpdating()',
  'error CannotEvictUnsettledDeliverable(string id)',
  'error CannotRevokeWithNonZeroBalance(address user, address provider, uint256 balance)',
  'error DeliverableAlreadyExists(string id)',
  'error DeliverableAlreadySettled(string id)',
  'error DeliverableIdInvalidLength(uint256 length)',
  'error DeliverableNotExists(string id)',
  'error DirectDepositsDisabled()',
  'error ETHTransferFailed()',
  'error InsufficientStake(uint256 provided, uint256 required)',
  'error InvalidLedgerAddress()',
  'error InvalidVerifierInput(string reason)',
  'error LimitTooLarge(uint256 limit)',
  'error LockTimeOutOfRange(uint256 lockTime)',
  'error PenaltyPercentageTooHigh(uint256 percentage)',
  'error PreviousDeliverableNotAcknowledged(string id)',
  'error SecretShouldBeEmpty()',
  'error SecretShouldNotBeEmpty()',
  'error ServiceNotExist(address provider)',
  'error TooManyRefunds(address user, address provider)',
  'error TransferToLedgerFailed()',
])

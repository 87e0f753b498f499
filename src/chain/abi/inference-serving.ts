import { parseAbi } from 'viem'

/**
 * InferenceServing (per-provider sub-accounts, services, TEE settlement), as deployed on 0G mainnet and testnet.
 * Source: 0g-serving-contract contracts/inference/*.sol; matches @0gfoundation/0g-compute-ts-sdk 0.9.0
 * (checked by src/chain/abi/abi-drift.test.ts).
 */
export const inferenceServingAbi = parseAbi([
  'struct ServiceParams { string serviceType; string url; string model; string verifiability; uint256 inputPrice; uint256 outputPrice; string additionalInfo; address teeSignerAddress; }',
  'struct Service { address provider; string serviceType; string url; uint256 inputPrice; uint256 outputPrice; uint256 updatedAt; string model; string verifiability; string additionalInfo; address teeSignerAddress; bool teeSignerAcknowledged; }',
  'struct Refund { uint256 index; uint256 amount; uint256 createdAt; bool processed; }',
  'struct Account { address user; address provider; uint256 nonce; uint256 balance; uint256 pendingRefund; Refund[] refunds; string additionalInfo; bool acknowledged; uint256 validRefundsLength; uint256 generation; uint256 revokedBitmap; }',
  'struct TEESettlementData { address user; address provider; uint256 totalFee; bytes32 requestsHash; uint256 nonce; bytes signature; }',

  // provider
  'function addOrUpdateService(ServiceParams params) payable',
  'function removeService()',
  'function settleFeesWithTEE(TEESettlementData[] settlements) returns (uint8[] statuses)',
  'function previewSettlementResults(TEESettlementData[] settlements) view returns (address[] failedUsers, uint8[] failureReasons, address[] partialUsers, uint256[] partialAmounts)',

  // user
  'function acknowledgeTEESigner(address provider, bool acknowledged)',
  'function revokeToken(address provider, uint8 tokenId)',
  'function revokeTokens(address provider, uint8[] tokenIds)',
  'function revokeAllTokens(address provider)',

  // owner
  'function initialize(uint256 _locktime, address _ledgerAddress, address owner)',
  'function acknowledgeTEESignerByOwner(address provider)',
  'function revokeTEESignerAcknowledgement(address provider)',
  'function updateLockTime(uint256 _locktime)',

  // views
  'function getService(address provider) view returns (Service service)',
  'function getAllServices(uint256 offset, uint256 limit) view returns (Service[] services, uint256 total)',
  'function getAccount(address user, address provider) view returns (Account)',
  'function getAccountsByUser(address user, uint256 offset, uint256 limit) view returns (Account[] accounts, uint256 total)',
  'function getAccountsByProvider(address provider, uint256 offset, uint256 limit) view returns (Account[] accounts, uint256 total)',
  'function getBatchAccountsByUsers(address[] users) view returns (Account[] accounts)',
  'function accountExists(address user, address provider) view returns (bool)',
  'function serviceExists(address provider) view returns (bool)',
  'function getPendingRefund(address user, address provider) view returns (uint256)',
  'function isTokenRevoked(address user, address provider, uint8 tokenId) view returns (bool)',
  'function lockTime() view returns (uint256)',
  'function ledgerAddress() view returns (address)',
  'function owner() view returns (address)',
  'function MIN_PROVIDER_STAKE() view returns (uint256)',
  'function MIN_LOCKTIME() view returns (uint256)',
  'function MAX_LOCKTIME() view returns (uint256)',

  'event AccountDeleted(address indexed user, address indexed provider, uint256 refundedAmount)',
  'event AllTokensRevoked(address indexed user, address indexed provider, uint256 newGeneration)',
  'event BalanceUpdated(address indexed user, address indexed provider, uint256 amount, uint256 pendingRefund)',
  'event BatchBalanceUpdated(address[] users, uint256[] balances, uint256[] pendingRefunds)',
  'event ContractInitialized(address indexed owner, uint256 lockTime, address ledgerAddress)',
  'event LockTimeUpdated(uint256 oldLockTime, uint256 newLockTime)',
  'event ProviderStakeReturned(address indexed provider, uint256 amount)',
  'event ProviderStaked(address indexed provider, uint256 amount)',
  'event ProviderTEESignerAcknowledged(address indexed provider, address indexed teeSignerAddress, bool acknowledged)',
  'event RefundRequested(address indexed user, address indexed provider, uint256 indexed index, uint256 timestamp)',
  'event ServiceRemoved(address indexed service)',
  'event ServiceUpdated(address indexed service, string serviceType, string url, uint256 inputPrice, uint256 outputPrice, uint256 updatedAt, string model, string verifiability)',
  'event TEESettlementResult(address indexed user, uint8 status, uint256 unsettledAmount)',
  'event TokenRevoked(address indexed user, address indexed provider, uint8 tokenId)',
  'event TokensRevoked(address indexed user, address indexed provider, uint8[] tokenIds)',

  'error AccountExists(address user, address provider)',
  'error AccountNotExists(address user, address provider)',
  'error AdditionalInfoTooLong()',
  'error AlreadyInitialized()',
  'error BatchSizeTooLarge(uint256 size, uint256 max)',
  'error CallerNotLedger(address caller)',
  'error CannotAddStakeWhenUpdating()',
  'error CannotRevokeWithNonZeroBalance(address user, address provider, uint256 balance)',
  'error DirectDepositsDisabled()',
  'error InsufficientStake(uint256 provided, uint256 required)',
  'error InvalidAddress(address addr)',
  'error InvalidTEESignature(string reason)',
  'error LimitTooLarge(uint256 limit, uint256 max)',
  'error LockTimeOutOfRange(uint256 lockTime, uint256 min, uint256 max)',
  'error NoSettlementsProvided()',
  'error ProviderCannotBeUser()',
  'error ServiceNotExist(address provider)',
  'error TooManyRefunds(address user, address provider)',
  'error TooManySettlements(uint256 count, uint256 max)',
  'error TransferFailed()',
])

/** Result of one settlement item (InferenceServing `SettlementStatus`). */
export const settlementStatus = [
  'SUCCESS',
  'PARTIAL',
  'PROVIDER_MISMATCH',
  'NO_TEE_SIGNER',
  'INVALID_NONCE',
  'INVALID_SIGNATURE',
] as const
export type SettlementStatus = (typeof settlementStatus)[number]

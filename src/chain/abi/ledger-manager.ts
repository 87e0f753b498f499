import { parseAbi } from 'viem'

/**
 * LedgerManager (the user's main account), as deployed on 0G mainnet and testnet.
 * Source: 0g-serving-contract contracts/ledger/LedgerManager.sol; matches @0gfoundation/0g-compute-ts-sdk 0.9.0
 * (checked by src/chain/abi/abi-drift.test.ts).
 */
export const ledgerManagerAbi = parseAbi([
  'struct Ledger { address user; uint256 availableBalance; uint256 totalBalance; string additionalInfo; }',
  'struct ServiceInfo { address serviceAddress; address serviceContract; string serviceType; string version; string fullName; string description; bool isRecommended; uint256 registeredAt; }',

  // user
  'function addLedger(string additionalInfo) payable returns (uint256, uint256)',
  'function depositFund() payable',
  'function depositFundFor(address recipient) payable',
  'function refund(uint256 amount)',
  'function transferFund(address provider, string serviceName, uint256 amount)',
  'function retrieveFund(address[] providers, string serviceName)',
  'function deleteLedger()',
  'function updateAdditionalInfo(string additionalInfo)',

  // views
  'function getLedger(address user) view returns (Ledger)',
  'function getAllLedgers(uint256 offset, uint256 limit) view returns (Ledger[] ledgers, uint256 total)',
  'function getLedgerProviders(address user, string serviceName) view returns (address[])',
  'function getServiceInfo(address serviceAddress) view returns (ServiceInfo)',
  'function getServiceAddressByName(string serviceName) view returns (address)',
  'function getAllActiveServices() view returns (ServiceInfo[])',
  'function getRecommendedService(string serviceType) view returns (string version, address serviceAddress)',
  'function MIN_ACCOUNT_BALANCE() view returns (uint256)',
  'function MIN_TRANSFER_AMOUNT() view returns (uint256)',
  'function owner() view returns (address)',
  'function initialized() view returns (bool)',

  // owner
  'function initialize(address owner)',
  'function registerService(string serviceType, string version, address serviceAddress, string description)',
  'function setRecommendedService(string serviceType, string version)',

  'event FundSpent(address indexed user, address indexed service, uint256 amount)',
  'event LedgerInfoUpdated(address indexed user, string additionalInfo)',
  'event ServiceRegistered(address indexed serviceAddress, string serviceName)',
  'event RecommendedServiceUpdated(string serviceType, string version, address serviceAddress)',

  'error AdditionalInfoTooLong(uint256 length, uint256 max)',
  'error AlreadyInitialized()',
  'error CallFailed()',
  'error CallerNotRegisteredService(address caller)',
  'error DirectDepositsDisabled()',
  'error InsufficientAvailableBalance(uint256 available, uint256 required)',
  'error InsufficientBalance(address user)',
  'error InvalidServiceAddress(address serviceAddress)',
  'error InvalidServiceType(string serviceType)',
  'error LedgerExists(address user)',
  'error LedgerLocked()',
  'error LedgerNotExists(address user)',
  'error MinimumDepositRequired(uint256 provided, uint256 required)',
  'error MustWithdrawAllFundsFirst(uint256 remainingBalance)',
  'error NoRecommendedService(string serviceType)',
  'error ServiceAlreadyRegistered(address serviceAddress)',
  'error ServiceMustImplementIServing(address serviceAddress)',
  'error ServiceNameExists(string serviceName)',
  'error ServiceNotFound(address serviceAddress)',
  'error ServiceNotRegistered(address serviceAddress)',
  'error ServiceRegistryLimitReached(uint256 limit)',
  'error ServiceTypeRequired()',
  'error TooManyProviders(uint256 requested, uint256 maximum)',
  'error TooManyProvidersForService(uint256 current, uint256 maximum)',
  'error TransferFailed()',
  'error VersionRequired()',
  'error ZeroAddressNotAllowed()',
  'error ZeroAmountNotAllowed()',
])

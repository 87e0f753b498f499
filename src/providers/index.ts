export { type AdditionalInfo, type PricingTier, parseAdditionalInfo } from './additional-info.ts'
export {
  type CatalogEntry,
  CatalogRefreshError,
  type ExcludedService,
  ProviderCatalog,
  type ProviderCatalogOptions,
} from './catalog.ts'
export { createProviderAgent } from './provider-agent.ts'
export { fetchProviderModels, ProviderModelsError } from './provider-models.ts'
export {
  type CheckProviderUrlOptions,
  checkProviderUrl,
  guardedLookup,
  isPrivateAddress,
  nonPublicRange,
  UnsafeProviderUrlError,
} from './url-safety.ts'

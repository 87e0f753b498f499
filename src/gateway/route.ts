import type { CatalogEntry } from '../providers/catalog.ts'
import type { RoutingControls } from '../providers/ranking.ts'
import type { ForwardRequest, GatewayCore } from './forward.ts'
import { GatewayError, modelNotFound } from './http/openai-error.ts'
import { meetRequirement, type VerificationRequirement } from './verification-policy.ts'

/** The request for an alias's target: its model, and the body the provider sees, name the real model. */
function retargeted(core: GatewayCore, req: ForwardRequest): ForwardRequest {
  const model = core.aliases.resolve(req.model, req.endpoint, (id) => core.catalog.candidates(id))
  if (model === req.model) return req
  if (req.retarget) return { ...req, model, body: req.retarget(model) }
  if (!(req.body instanceof Uint8Array)) return { ...req, model }
  const json = JSON.parse(Buffer.from(req.body).toString('utf8')) as Record<string, unknown>
  return { ...req, model, body: Buffer.from(JSON.stringify({ ...json, model })) }
}

const unavailable = (message: string) =>
  new GatewayError(503, message, { type: 'api_error', code: 'no_provider_available' })

/**
 * Who may serve the call, best first: the router's ranking of the model's providers (an alias resolved), narrowed
 * by what the key and the request require (verification, TEE only) and by the key's budget, which reserves the
 * call's worst case here. None: a 404 for a model nobody serves, else a 503 saying why.
 */
export async function route(
  core: GatewayCore,
  asked: ForwardRequest,
): Promise<{ req: ForwardRequest; candidates: readonly CatalogEntry[] }> {
  // Most calls name a real model: no alias, no copy.
  const req = core.aliases.size ? retargeted(core, asked) : asked
  const tuned = core.tunedModels && isTunedModel(req.model) ? await tunedRoute(core, req) : undefined
  const routed = tuned ?? core.router.candidates(req.model, req.controls)
  const eligible = req.requirement ? await requirementMet(core, req, req.requirement, routed) : routed
  const candidates = req.admission ? await req.admission.admit(eligible) : eligible
  if (candidates.length) return { req, candidates }
  if (tuned) throw unavailable(`the provider holding the fine-tuned model ${req.model} is not available right now`)
  if (!core.catalog.models().some((m) => m.id === req.model)) throw modelNotFound(req.model)
  const setAside = core.catalog.candidates(req.model).filter((e) => core.router.isFlagged(e.provider))
  if (setAside.length && !routed.length) {
    throw unavailable(
      `Every provider of model ${req.model} is set aside after disputed responses ` +
        `(${setAside.map((e) => e.provider).join(', ')}): the gateway's operator can resume one ` +
        '(POST /admin/funding/{provider}/resume).',
    )
  }
  if (req.controls && core.router.candidates(req.model).length) {
    throw unavailable(
      `No provider of model ${req.model} meets this call's routing controls ` +
        `(${describeControls(req.controls)}); without them, ${core.router.candidates(req.model).length} could serve it.`,
    )
  }
  throw unavailable(`no provider is available for model ${req.model}`)
}

const isTunedModel = (model: string) => model.startsWith('ft:')

/**
 * A fine-tuned model lives on the inference provider its adapter was deployed to, and answers only the API key that
 * trained it: another key, like a model nobody serves, gets a 404.
 */
async function tunedRoute(core: GatewayCore, req: ForwardRequest): Promise<readonly CatalogEntry[]> {
  const tuned = await core.tunedModels!.resolve(req.model, req.apiKeyId)
  if (!tuned) throw modelNotFound(req.model)
  return core.router.candidates(tuned.baseModel, req.controls).filter((e) => e.provider === tuned.provider)
}

/** The candidates that meet what the key and the request require; a refusal here is the verification policy's. */
async function requirementMet(
  core: GatewayCore,
  req: ForwardRequest,
  requirement: VerificationRequirement,
  routed: readonly CatalogEntry[],
): Promise<readonly CatalogEntry[]> {
  try {
    return await meetRequirement(req.model, routed, requirement, core.attestations)
  } catch (err) {
    if (req.observation) req.observation.refusal = 'verification_policy'
    throw err
  }
}

function describeControls(c: RoutingControls): string {
  return [
    c.provider && `provider ${c.provider}${c.allowFallbacks ? '' : ', no fallbacks'}`,
    c.maxPricePrompt !== undefined && `prompt price at most ${c.maxPricePrompt} neuron a token`,
    c.maxPriceCompletion !== undefined && `completion price at most ${c.maxPriceCompletion} neuron a token`,
  ]
    .filter(Boolean)
    .join('; ')
}

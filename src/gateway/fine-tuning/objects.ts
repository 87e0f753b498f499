import type { FileRecord, JobEvent, JobRecord, Page, TunedModel } from './records.ts'

/** A file as OpenAI's `/v1/files` describes it. */
export function fileObject(f: FileRecord) {
  return {
    id: f.id,
    object: 'file' as const,
    bytes: f.bytes,
    created_at: f.createdAt,
    expires_at: null,
    filename: f.filename,
    purpose: f.purpose,
    status: 'processed' as const,
    status_details: null,
  }
}

/**
 * A job as OpenAI's `fine_tuning.job`, plus `zg`: where it runs on 0G (provider, task, fee in neuron, phase), for
 * whoever wants to follow it on chain.
 */
export function jobObject(j: JobRecord) {
  const hyperparameters = {
    n_epochs: j.hyperparameters.n_epochs,
    batch_size: j.hyperparameters.batch_size,
    learning_rate_multiplier: j.hyperparameters.learning_rate_multiplier,
  }
  return {
    id: j.id,
    object: 'fine_tuning.job' as const,
    created_at: j.createdAt,
    error: j.error,
    fine_tuned_model: j.fineTunedModel,
    finished_at: j.finishedAt,
    hyperparameters,
    method: { type: 'supervised' as const, supervised: { hyperparameters } },
    model: j.model,
    organization_id: 'zg-gateway',
    result_files: j.resultFile ? [j.resultFile] : [],
    seed: j.seed,
    status: j.status,
    trained_tokens: j.trainedTokens,
    training_file: j.trainingFile,
    validation_file: null,
    integrations: null,
    estimated_finish: null,
    metadata: j.metadata,
    user_provided_suffix: j.suffix,
    zg: {
      provider: j.provider,
      task_id: j.taskId,
      fee: j.fee === null ? null : j.fee.toString(),
      phase: j.phase,
    },
  }
}

export function eventObject(e: JobEvent) {
  const { log_line: _, ...data } = e.data ?? {}
  return {
    object: 'fine_tuning.job.event' as const,
    id: e.id,
    created_at: e.createdAt,
    level: e.level,
    message: e.message,
    data,
    type: e.type,
  }
}

export function listObject<T, O>(page: Page<T>, of: (item: T) => O & { id: string }) {
  const data = page.data.map(of)
  return {
    object: 'list' as const,
    data,
    has_more: page.hasMore,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
  }
}

/** A fine-tuned model as `/v1/models` lists it: owned by the key that trained it, served where it was deployed. */
export function tunedModelObject(m: TunedModel) {
  return {
    id: m.id,
    object: 'model' as const,
    created: m.createdAt,
    owned_by: 'user',
    service_type: 'chatbot',
    parent: m.baseModel,
    fine_tuning_job: m.jobId,
    providers: [{ address: m.provider }],
  }
}

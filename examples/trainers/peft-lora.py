#!/usr/bin/env python3
"""A real LoRA trainer for zg-gateway's fine-tuning provider: Hugging Face transformers + PEFT, on a GPU.

It follows the trainer contract (README.md beside this file):

    peft-lora.py [--models-dir DIR] --dataset FILE --base-model NAME --config FILE --output-dir DIR

  - dataset:   JSONL in one of 0G's formats: {"messages": [...]}, {"instruction", "input", "output"}, {"text"}
  - config:    the task's trainingParams: JSON in Hugging Face TrainingArguments names (num_train_epochs,
               learning_rate, per_device_train_batch_size, ...), plus optional LoRA settings (lora_r, lora_alpha,
               lora_dropout, lora_target_modules) and max_seq_length
  - stdout:    one JSON object per line: {"event": "progress", "step", "total_steps", "epoch", "loss"} and
               {"event": "log", "message"}
  - output:    PEFT's save_pretrained: adapter_config.json + adapter_model.safetensors, which vLLM loads with
               POST /v1/load_lora_adapter
  - exit code: 0 on success; otherwise 1 with the reason on stderr

Run it from the provider with, for example:

    zg-gateway provider fine-tuning serve --trainer "python3 examples/trainers/peft-lora.py --models-dir /models" ...

Base models are looked up as <models-dir>/<base-model> first (a TEE usually has no internet access), then as a
Hugging Face Hub id. Requires: torch, transformers (>= 4.45), peft (>= 0.13), accelerate, and a CUDA GPU (it runs on
CPU too, slowly).
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile

# Progress lines must reach the provider as they happen, not when a buffer fills.
sys.stdout.reconfigure(line_buffering=True)


def emit(event):
    print(json.dumps(event), flush=True)


def log(message):
    emit({"event": "log", "message": message})


LORA_KEYS = {"lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"}


def read_records(path):
    """The dataset's records, one JSON object per non-blank line; a bad line stops everything with its number."""
    records = []
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"line {number} is not valid JSON ({e.msg})") from e
            if not isinstance(record, dict):
                raise ValueError(f"line {number}: a record must be a JSON object")
            records.append((number, record))
    if not records:
        raise ValueError("the dataset has no examples")
    return records


def text_of(content):
    """A message's text: a string, or the text of its content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))


def conversations(number, record):
    """A record as chat messages (the instruction and text formats become one-turn conversations or plain text)."""
    if isinstance(record.get("messages"), list):
        return [{"role": m["role"], "content": text_of(m.get("content")), "weight": m.get("weight", 1)}
                for m in record["messages"]], None
    if isinstance(record.get("instruction"), str) and isinstance(record.get("output"), str):
        prompt = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
        return [{"role": "user", "content": prompt, "weight": 1},
                {"role": "assistant", "content": record["output"], "weight": 1}], None
    if isinstance(record.get("text"), str):
        return None, record["text"]
    raise ValueError(f'line {number}: a record needs "messages", "instruction" and "output", or "text"')


def tokenize(records, tokenizer, max_len):
    """input_ids and labels per example; only the completion is learned (prompt tokens are labelled -100)."""
    examples = []
    for number, record in records:
        messages, text = conversations(number, record)
        if text is not None:
            ids = tokenizer(text + (tokenizer.eos_token or ""), add_special_tokens=True)["input_ids"][:max_len]
            examples.append({"input_ids": ids, "labels": list(ids)})
            continue
        # One example per trained assistant turn, conditioned on the conversation before it.
        for i, message in enumerate(messages):
            if message["role"] != "assistant" or message["weight"] == 0:
                continue
            history = [{"role": m["role"], "content": m["content"]} for m in messages[: i + 1]]
            prompt = tokenizer.apply_chat_template(history[:-1], add_generation_prompt=True, tokenize=True)
            full = tokenizer.apply_chat_template(history, tokenize=True)
            if full[: len(prompt)] != prompt:
                raise ValueError(f"line {number}: the chat template does not extend the prompt with the answer")
            full = full[:max_len]
            labels = [-100] * min(len(prompt), len(full)) + full[len(prompt):]
            if any(label != -100 for label in labels):
                examples.append({"input_ids": full, "labels": labels})
    if not examples:
        raise ValueError("no example has an answer left to learn after truncation")
    return examples


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--base-model", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--models-dir", default="",
                        help="directory holding base models by name (checked before the Hugging Face Hub)")
    args = parser.parse_args()

    # Imported here so that --help and argument errors need no GPU stack.
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer,
                              TrainerCallback, TrainingArguments)

    with open(args.config, encoding="utf-8") as f:
        config = json.load(f)
    if not isinstance(config, dict):
        raise ValueError("the config must be a JSON object")

    local = os.path.join(args.models_dir, args.base_model) if args.models_dir else ""
    model_path = local if local and os.path.isdir(local) else args.base_model
    log(f"base model {args.base_model} from {model_path}")

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    examples = tokenize(read_records(args.dataset), tokenizer, int(config.get("max_seq_length", 1024)))
    log(f"{len(examples)} training examples")

    use_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    model = AutoModelForCausalLM.from_pretrained(
        model_path, torch_dtype=torch.bfloat16 if use_bf16 else torch.float32, device_map="auto")
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=int(config.get("lora_r", 8)),
        lora_alpha=int(config.get("lora_alpha", 16)),
        lora_dropout=float(config.get("lora_dropout", 0.05)),
        target_modules=config.get("lora_target_modules", "all-linear"),
    )
    model = get_peft_model(model, lora)
    trainable, total = model.get_nb_trainable_parameters()
    log(f"LoRA r={lora.r}: {trainable} trainable parameters of {total}")

    # The task's TrainingArguments, as far as this transformers knows them; the rest is the trainer's own business.
    known = {f.name for f in dataclasses.fields(TrainingArguments)}
    training = {k: v for k, v in config.items() if k in known}
    ignored = sorted(set(config) - known - LORA_KEYS - {"max_seq_length"})
    if ignored:
        log(f"config keys ignored: {', '.join(ignored)}")
    checkpoints = tempfile.mkdtemp(prefix="zg-peft-")
    training.update(output_dir=checkpoints, save_strategy="no", logging_steps=1, report_to=[], bf16=use_bf16,
                    remove_unused_columns=False)
    training.setdefault("num_train_epochs", 3)
    training.setdefault("learning_rate", 2e-4)
    training.setdefault("per_device_train_batch_size", 4)

    class Progress(TrainerCallback):
        def on_log(self, _args, state, _control, logs=None, **_kwargs):
            if logs and "loss" in logs:
                emit({"event": "progress", "step": state.global_step, "total_steps": state.max_steps,
                      "epoch": round(state.epoch or 0, 4), "loss": float(logs["loss"])})

    trainer = Trainer(
        model=model,
        args=TrainingArguments(**training),
        train_dataset=examples,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        callbacks=[Progress()],
    )
    trainer.train()

    model.save_pretrained(args.output_dir)
    log(f"adapter written to {args.output_dir}")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the provider shows the last lines of stderr as the job's error
        print(f"peft-lora trainer: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)

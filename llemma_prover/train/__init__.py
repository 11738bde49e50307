"""Fine-tuning a causal LM on extracted proof steps (``llemma-prover train``).

* ``train.config``: ``TrainConfig``, every setting of a training run as plain frozen data;
* ``train.data``: an ``extract`` output folder (``steps.jsonl`` + ``card.json``) read, checked (sha256,
  the miniF2F contamination result) and rendered as (prompt, completion) pairs in exactly the text the
  ``llemma`` generator shows the model at search time (the zero-shot Llemma prompt of the backend);
* ``train.loop``: the training loop (full fine-tune or LoRA, CPU or GPU/bf16, checkpoints, resume,
  valid loss) and the output folder, which ``prove --generator llemma --model DIR`` loads as it is.

torch, transformers and peft are imported inside functions only.
"""

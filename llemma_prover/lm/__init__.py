"""Causal language models: loading, the shared-prefix attention, and the batched tactic decoder.

One module, one job:

* ``lm.loading``: resolve device/dtype and load a ``transformers`` causal LM and its tokenizer
  (``load_model``); ``GeneratorUnavailable`` says why and what to do when it cannot;
* ``lm.attention``: an attention function that lets every row of a batch read one shared copy of a
  cached prompt prefix;
* ``lm.decoder``: ``Decoder``, batched beam search / sampling of tactics after a fixed prefix, which the
  ``llemma`` generator (``generators.llemma``) and the model server (``serving``) both use;
* ``lm.synthetic``: randomly initialised Llama models and SmolLM2's offline tokenizer for tests and
  benchmarks.

Nothing here is imported by ``llemma_prover.core``; torch and transformers are imported inside functions.
"""

// Errors about checkpoint files: the message starts with the file and says what is wrong; the code
// tells callers (and the CLI) what kind of problem it is.

export type CheckpointErrorCode =
  /** Truncated or malformed: the file is damaged or not what it claims to be. */
  | 'MEDTUNE_CHECKPOINT_CORRUPT'
  /** The file would run code if loaded by torch.load(weights_only=False); refused. */
  | 'MEDTUNE_CHECKPOINT_UNSAFE'
  /** Well-formed, but uses something medtune does not read (TorchScript, a legacy tar file ...). */
  | 'MEDTUNE_CHECKPOINT_UNSUPPORTED'
  /** No weights where they were expected (no state dict, an unknown key path). */
  | 'MEDTUNE_CHECKPOINT_NO_WEIGHTS';

export class CheckpointError extends Error {
  override name = 'CheckpointError';
  constructor(readonly file: string, readonly code: CheckpointErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${file}: ${message}`, options);
  }
}

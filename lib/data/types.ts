// The typed examples the dataset readers produce. Every example remembers where it came from
// (file and line), so later errors (a missing image, a prompt too long) can point at the record.

export interface SourceRef {
  file: string;
  line: number;
}

export type Speaker = 'human' | 'gpt' | 'system';

export interface ConversationTurn {
  from: Speaker;
  value: string;
}

/** LLaVA / LLaVA-Med conversation form; the VQA datasets are converted to it on load. */
export interface ConversationExample {
  id: string;
  /** Image path(s) relative to the image folder, as written in the file. */
  image?: string;
  conversations: ConversationTurn[];
  /** 'CLOSED' (yes/no) or 'OPEN' for VQA data; absent for free-form instruction data. */
  answerType?: 'CLOSED' | 'OPEN';
  source: SourceRef;
  /** Extra fields of the original record that scoring or analysis may want (phrase_type, q_lang...). */
  meta?: Record<string, string>;
}

export interface ReportExample {
  id: string;
  split: string;
  /** Image paths relative to the image folder (IU-Xray has two views per study). */
  images: string[];
  report: string;
  source: SourceRef;
}

/**
 * A multi-label classification example. `labels[i]` is 1, 0, or NaN where the label is
 * unknown and must be ignored by the loss (CheXpert's uncertain policy 'ignore', blanks).
 */
export interface ClassificationExample {
  id: string;
  image: string;
  labels: number[];
  source: SourceRef;
}

export interface ClassificationDataset {
  labelNames: string[];
  examples: ClassificationExample[];
}

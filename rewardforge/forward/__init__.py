"""The forward path: how tokenized groups become one model call (prompt sharing, packing,
attention masks) and rewards, the same in training, evaluation and scoring."""

from keras_selfie.layers.attention_pooling import AttentionPooling
from keras_selfie.layers.fused_batch_normalization import (
    FusedBatchNormalization,
)
from keras_selfie.layers.patch_extractor import PatchExtractor
from keras_selfie.layers.row_col_positional_embedding import (
    RowColPositionalEmbedding,
)
from keras_selfie.layers.transformer_block import TransformerBlock

"""BLIP's cross-attention padding mask, restored in transformers' BLIP text models.

transformers 5.18's BlipTextAttention.forward hands the cross-attention mask to
BlipTextSelfAttention as `attention_mask`, but BlipTextSelfAttention reads `encoder_attention_mask`
for cross-attention, so the mask is dropped: a BLIP decoder trained on padded questions attends
the question's padding, which Salesforce BLIP (models/med.py) masks. medtune follows BLIP; the
reference scripts apply this patch so that padded batches compare like with like.
"""
from transformers.models.blip import modeling_blip_text


def restore_cross_attention_mask():
    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, past_key_values=None, **kwargs):
        cross = encoder_hidden_states is not None
        context, probs = self.self(hidden_states, attention_mask=None if cross else attention_mask, encoder_hidden_states=encoder_hidden_states,
                                   encoder_attention_mask=attention_mask if cross else None, past_key_values=past_key_values)
        return self.output(context, hidden_states), probs

    modeling_blip_text.BlipTextAttention.forward = forward

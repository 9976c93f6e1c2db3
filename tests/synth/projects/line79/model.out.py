from adopter_kernels import dropout_add_layer_norm
from torch import nn


class SelfOutput(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dense(hidden_states)
        hidden_states = dropout_add_layer_norm(
            hidden_states, input_tensor, self.dropout, self.LayerNorm
        )
        return hidden_states

"""A small convolutional network in torchvision style (Conv -> BatchNorm pairs)."""

from torch import nn


class ConvBlock(nn.Module):
    def __init__(self, channels_in, channels_out, use_norm=True):
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels_out, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels_out)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.conv(x)
        x = self.bn(x)
        return self.act(x)


class Head(nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.fc = nn.Linear(features, features)
        self.norm = nn.BatchNorm1d(features)
        self.classifier = nn.Linear(features, classes)

    def forward(self, pooled):
        hidden = self.fc(pooled)
        hidden = self.norm(hidden)
        return self.classifier(hidden)

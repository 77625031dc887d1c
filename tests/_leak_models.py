"""A tiny torch model for split_leakage's model-stage tests, as the source of a module a manifest imports.

``pretrained()`` has BatchNorm statistics a training run would have left (so the weights
count as pretrained), ``random_init()`` has none, ``crashes()`` raises in ``forward``.
"""

MODELS = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(),
        )
        self.fc = torch.nn.Linear(128, 2)

    def forward(self, x):
        return self.fc(self.features(x))


def pretrained():
    torch.manual_seed(0)
    model = Net()
    bn = model.features[1]
    bn.running_mean.fill_(0.05)   # statistics a training run accumulated: "pretrained"
    bn.running_var.fill_(0.9)
    bn.num_batches_tracked += 10
    return model


def random_init():
    return Net()


class Crashes(Net):
    def forward(self, x):
        raise ValueError("boom in forward")


def crashes():
    model = Crashes()
    model.load_state_dict(pretrained().state_dict())
    return model
"""

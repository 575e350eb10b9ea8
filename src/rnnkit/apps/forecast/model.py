"""The forecaster's network: a many-to-one model whose head outputs ``steps x K`` numbers, its
Gaussian or quantile loss, reading its outputs, and training a fresh one.

``head="gaussian"``: K=2, a mean and a scale per step, trained by Gaussian negative log-likelihood
(DeepAR's likelihood, Salinas et al. 2020, sec. 3.1, without autoregression); ``head="quantile"``:
K quantiles trained by the pinball loss (Koenker & Bassett 1978; MQ-RNN, Wen et al. 2017, sec. 3).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ...models import create_model
from ...training import StepOutput, TensorBatches
from .config import ForecastConfig, head_size, steps_per_forecast


def split_outputs(outputs: Tensor, config: ForecastConfig) -> Tensor:
    return outputs.view(outputs.shape[0], steps_per_forecast(config), head_size(config))  # (B, H or 1, K)


def gaussian(outputs: Tensor) -> tuple[Tensor, Tensor]:
    mean, raw = outputs[..., 0], outputs[..., 1]  # (B, H) each
    return mean, nn.functional.softplus(raw) + 1e-3  # a positive scale, bounded away from 0


class ForecastObjective:
    """Gaussian NLL or pinball loss of ``(B, H, K)`` head outputs against targets ``(B, H)``.

    Target steps past the end of the data (NaN) are left out of the loss.
    """

    def __init__(self, config: ForecastConfig) -> None:
        self.config = config
        self.quantiles = torch.tensor(config.quantiles)

    def __call__(self, model: nn.Module, batch: tuple[Tensor, ...], state: Any = None) -> StepOutput:
        inputs, targets = batch[0], batch[1]
        # many series: a third tensor holds each window's valid length (``rnnkit.data.panel.BucketBatches``)
        outputs = model(inputs) if len(batch) < 3 else model(inputs, lengths=batch[2])
        out = split_outputs(outputs, self.config)  # (B, H, K)
        known = ~torch.isnan(targets)  # (B, H)
        y = torch.nan_to_num(targets)
        if self.config.head == "gaussian":
            mean, scale = gaussian(out)
            # -log N(y; mean, scale^2) without the constant log(2 pi) / 2
            losses = torch.log(scale) + 0.5 * ((y - mean) / scale) ** 2  # (B, H)
            point = mean
        else:
            q = self.quantiles.to(out.device)  # (K,)
            error = y.unsqueeze(-1) - out  # (B, H, K)
            losses = torch.maximum(q * error, (q - 1) * error).mean(-1)  # pinball, mean over quantiles
            point = out[..., len(self.config.quantiles) // 2]
        count = int(known.sum())
        loss = (losses * known).sum() / max(count, 1)
        scaled_mae = float(((point.detach() - y).abs() * known).sum() / max(count, 1))
        return StepOutput(loss, count, None, {"scaled_mae": scaled_mae}, examples=inputs.shape[0])  # windows


def point_and_interval(out: Tensor, config: ForecastConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Point forecast, lower and upper bound ``(B, H)`` each, in the model's (scaled) units."""
    if config.head == "gaussian":
        mean, scale = gaussian(out)
        z = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.5 + config.interval / 2))
        return mean, mean - z * scale, mean + z * scale
    ordered = out.sort(dim=-1).values  # quantile heads may cross; sorting fixes the order
    return ordered[..., len(config.quantiles) // 2], ordered[..., 0], ordered[..., -1]


def forecast_model(config: ForecastConfig, features: int, model_settings: dict[str, Any]) -> nn.Module:
    """The many-to-one model over ``features`` input columns, ``steps x K`` outputs."""
    outputs = steps_per_forecast(config) * head_size(config)
    return create_model("many_to_one", {**model_settings, "input": {"features": features}, "outputs": outputs})


def fit_model(config: ForecastConfig, inputs: Tensor, targets: Tensor, model_settings: dict[str, Any],
              train_config, *, quiet: bool = True) -> nn.Module:  # fmt: skip
    """A fresh model trained on ``inputs``/``targets`` exactly as the run's own model was (same
    settings, seed, batch order rule), without a run directory; returned on the CPU, where the
    forecasts put their inputs. ``quiet=False`` shows its training progress."""
    from ...training import Trainer

    torch.manual_seed(train_config.seed)
    model = forecast_model(config, inputs.shape[-1], model_settings)
    batches = TensorBatches(inputs, targets, batch_size=config.batch_size, seed=train_config.seed)
    Trainer(model, ForecastObjective(config), train_config, quiet=quiet, unit="windows").fit(batches)
    return model.cpu().eval()

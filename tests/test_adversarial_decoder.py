"""The decoder's adversarial objective: one backward pass gives each player exactly the gradient of its
own loss (the critic its hinge loss on detached audio, the decoder its reconstruction, hinge and
feature-matching losses through a frozen critic), as two separate passes would."""

from __future__ import annotations

import pytest
import torch

from engine.vqvae import VQVAE, losses
from engine.vqvae.adversarial import (
    AdversarialDecoderObjective,
    AdversarialWeights,
    critic_hinge_loss,
    feature_matching_loss,
    generator_hinge_loss,
)
from engine.vqvae.config import TINY
from engine.vqvae.discriminator import DiscriminatorConfig, SpectrogramDiscriminator

pytestmark = pytest.mark.usefixtures("one_thread")

CRITIC = DiscriminatorConfig(width=4, resolutions=((256, 64), (128, 32)), dilations=(1, 2))


WEIGHTS = AdversarialWeights(0.7, 0.3)


def _setup(weights=WEIGHTS):
    torch.manual_seed(0)
    model = VQVAE(TINY)
    audio = torch.randn(2, 4096, generator=torch.Generator().manual_seed(1)) * 0.3
    with torch.no_grad():  # codebooks from this audio, as a trained model's would be
        for encoder, codebook in zip(model.encoders, model.bottleneck.level_blocks, strict=True):
            z = encoder(audio.unsqueeze(1))
            codebook.init_from_batch_(z.permute(0, 2, 1).reshape(-1, z.shape[1]))
    model.encoders.requires_grad_(False)
    return AdversarialDecoderObjective(model, SpectrogramDiscriminator(CRITIC), weights), audio


def _grads(module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}


def test_one_backward_gives_each_player_the_gradient_of_its_own_loss_alone():
    objective, audio = _setup()
    bandwidth = losses.Bandwidth()
    levels = (1, 2)
    objective(audio, bandwidth, levels=levels).loss.backward()
    decoder_grads, critic_grads = _grads(objective.vqvae.decoders), _grads(objective.critic)
    assert critic_grads and decoder_grads

    # The critic alone: its hinge loss on the real audio against every level's decoded audio, detached.
    objective.zero_grad(set_to_none=True)
    plain = objective.vqvae(audio, bandwidth, frozen_codes=True, levels=levels)
    real = objective.critic(audio)
    critic_loss = sum(
        critic_hinge_loss([s for s, _ in real], [s for s, _ in objective.critic(x.detach())])
        for x in plain.x_hat
    )
    critic_loss.backward()
    expected_critic = _grads(objective.critic)
    assert expected_critic.keys() == critic_grads.keys()
    for name, grad in expected_critic.items():
        torch.testing.assert_close(critic_grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)

    # The decoder alone: its usual loss plus the weighted terms through a critic that does not learn.
    objective.zero_grad(set_to_none=True)
    plain = objective.vqvae(audio, bandwidth, frozen_codes=True, levels=levels)
    with torch.no_grad():
        real_features = [f for _, f in objective.critic(audio)]
    total = plain.loss
    for x_hat in plain.x_hat:
        fooled = objective.critic(x_hat)
        total = total + 0.7 * generator_hinge_loss([s for s, _ in fooled])
        total = total + 0.3 * feature_matching_loss(real_features, [f for _, f in fooled])
    total.backward()
    expected_decoder = _grads(objective.vqvae.decoders)
    assert expected_decoder.keys() == decoder_grads.keys()
    for name, grad in expected_decoder.items():
        torch.testing.assert_close(decoder_grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)
    assert all(p.requires_grad for p in objective.critic.parameters())  # left trainable after the step


def test_the_losses_reward_what_they_should():
    real, fake = [torch.full((3,), 2.0)], [torch.full((3,), -2.0)]
    assert float(critic_hinge_loss(real, fake)) == 0.0  # sure and right: nothing to learn
    assert float(critic_hinge_loss(fake, real)) == pytest.approx(6.0)  # sure and wrong
    assert float(generator_hinge_loss(real)) == 0.0
    assert float(generator_hinge_loss(fake)) == pytest.approx(3.0)
    features = [[torch.tensor([1.0, -2.0]), torch.tensor([4.0])]]
    assert float(feature_matching_loss(features, features)) == 0.0
    halved = [[f / 2 for f in features[0]]]
    assert float(feature_matching_loss(features, halved)) == pytest.approx(0.5)


def test_the_critic_reads_any_length_and_scores_real_and_decoded_audio_apart_after_training():
    """A few steps of the critic alone on clean tones against the same tones dulled (low-passed): it
    learns to tell them apart, which is all the decoder's adversarial gradient relies on."""
    torch.manual_seed(0)
    critic = SpectrogramDiscriminator(CRITIC)
    t = torch.arange(4096) / 16000
    tones = torch.stack([torch.sign(torch.sin(2 * torch.pi * f * t)) * 0.3 for f in (110.0, 220.0, 330.0)])
    dull = torch.nn.functional.avg_pool1d(tones.unsqueeze(1), 9, 1, 4, count_include_pad=False)[:, 0]
    optimizer = torch.optim.Adam(critic.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        loss = critic_hinge_loss([s for s, _ in critic(tones)], [s for s, _ in critic(dull)])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        real = torch.cat([s.flatten() for s, _ in critic(tones)]).mean()
        fake = torch.cat([s.flatten() for s, _ in critic(dull)]).mean()
        odd = critic(tones[:, :3001])  # any length above half the largest STFT
    assert float(real) > 0.5 > -0.5 > float(fake)
    assert len(odd) == len(CRITIC.resolutions)

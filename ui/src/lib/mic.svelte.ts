// Mic check: the device list (the choice is remembered by the backend), the live meter, and the
// 3-second noise-floor measurement with its verdict.
import type { AppController } from './app.svelte';
import { normalizeError } from './errors';
import { t } from './i18n';
import type { AppError, DeviceInfo, Level, NoiseCheck } from './types';

/** How long the clip light stays on after a clipped block. */
export const CLIP_HOLD_MS = 1000;

export class MicController {
  devices = $state<DeviceInfo[]>([]);
  level = $state<Level | null>(null);
  metering = $state(false);
  /** The meter is being started (the screen opening): "the meter is off" would only flash. */
  starting = $state(false);
  clipLit = $state(false);
  noise = $state<NoiseCheck | null>(null);
  checking = $state(false);
  error = $state<AppError | null>(null);
  private clipTimer: ReturnType<typeof setTimeout> | null = null;
  private opened = false;

  constructor(private readonly app: AppController) {}

  /** The remembered device name (null = system default). */
  get selected(): string | null {
    return this.app.state?.device ?? null;
  }

  /** False when the remembered device is not connected now. */
  get selectedAvailable(): boolean {
    const name = this.selected;
    return name === null || this.devices.some((d) => d.name === name);
  }

  get defaultDevice(): DeviceInfo | undefined {
    return this.devices.find((d) => d.is_default);
  }

  async open(): Promise<void> {
    this.opened = true;
    this.noise = null;
    this.starting = true;
    try {
      await this.refreshDevices();
      await this.startMeter();
    } finally {
      this.starting = false;
    }
  }

  async close(): Promise<void> {
    this.opened = false;
    await this.stopMeter();
  }

  async refreshDevices(): Promise<void> {
    try {
      this.devices = await this.app.backend.listDevices();
    } catch (e) {
      this.error = normalizeError(e);
    }
  }

  async startMeter(): Promise<void> {
    if (this.metering) return;
    this.error = null;
    this.starting = true;
    try {
      await this.app.backend.startMeter((l) => this.onLevel(l));
      this.metering = true;
    } catch (e) {
      this.error = normalizeError(e);
      this.level = null;
    } finally {
      this.starting = false;
    }
  }

  async stopMeter(): Promise<void> {
    if (!this.metering) return;
    this.metering = false;
    this.level = null;
    try {
      await this.app.backend.stopMeter();
    } catch {
      /* nothing to stop */
    }
  }

  onLevel(l: Level): void {
    if (!this.metering && !this.checking) return;
    this.level = l;
    if (l.clipped) {
      this.clipLit = true;
      if (this.clipTimer) clearTimeout(this.clipTimer);
      this.clipTimer = setTimeout(() => (this.clipLit = false), CLIP_HOLD_MS);
    }
  }

  /** Chooses a device (null = system default) and restarts the meter on it. */
  async select(name: string | null): Promise<void> {
    const wasMetering = this.metering;
    await this.stopMeter();
    this.noise = null;
    try {
      this.app.setState(await this.app.backend.selectDevice(name));
      this.app.announce(t('mic.selected', { name: name ?? t('mic.systemDefault') }));
      this.app.deviceLost = null;
    } catch (e) {
      this.error = normalizeError(e);
    }
    await this.refreshDevices();
    if (wasMetering || this.opened) await this.startMeter();
  }

  async checkNoise(): Promise<void> {
    if (this.checking) return;
    const wasMetering = this.metering;
    await this.stopMeter();
    this.checking = true;
    this.noise = null;
    this.error = null;
    this.app.announce(t('noise.running'));
    try {
      this.noise = await this.app.backend.checkNoise();
      this.app.announce(t(`noise.verdict.${this.noise.verdict}`));
    } catch (e) {
      this.error = normalizeError(e);
      this.app.announce(t(`error.${this.error.kind}`));
    } finally {
      this.checking = false;
    }
    if (wasMetering && this.opened) await this.startMeter();
  }

  async onDeviceLost(): Promise<void> {
    this.metering = false;
    this.level = null;
    await this.refreshDevices();
    if (this.opened) this.error = { kind: 'device_lost', message: this.app.deviceLost ?? '' };
  }
}

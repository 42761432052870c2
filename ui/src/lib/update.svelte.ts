// Updates (release builds): offered after a quiet check at start, downloaded and verified by the
// shell against the updater key pinned into the build, installed only when the contractor says so.
import type { Backend } from './backend';
import { normalizeError } from './errors';
import type { AppError, UpdateOffer } from './types';

export type UpdatePhase = 'none' | 'offered' | 'downloading' | 'verified' | 'installing' | 'failed';

export class UpdateController {
  offer = $state<UpdateOffer | null>(null);
  phase = $state<UpdatePhase>('none');
  /** Download progress 0..1 (null while the size is unknown). */
  progress = $state<number | null>(null);
  error = $state<AppError | null>(null);

  constructor(private readonly backend: Backend) {}

  /** Asks for an update; failing to reach the endpoint is not the contractor's problem: no notice. */
  async check(): Promise<void> {
    try {
      this.offer = await this.backend.checkUpdate();
      this.phase = this.offer ? 'offered' : 'none';
    } catch {
      this.phase = 'none';
    }
  }

  /** Downloads and verifies; a refused signature is shown and nothing is kept. */
  async download(): Promise<void> {
    this.phase = 'downloading';
    this.error = null;
    this.progress = null;
    try {
      await this.backend.downloadUpdate((p) => {
        this.progress = p.total ? p.done / p.total : null;
      });
      this.phase = 'verified';
    } catch (e) {
      this.error = normalizeError(e);
      this.phase = 'failed';
    }
  }

  /** Installs the verified update; the app restarts. */
  async install(): Promise<void> {
    this.phase = 'installing';
    try {
      await this.backend.installUpdate();
    } catch (e) {
      this.error = normalizeError(e);
      this.phase = 'failed';
    }
  }

  dismiss(): void {
    this.phase = 'none';
  }
}

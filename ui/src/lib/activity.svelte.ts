// The local audit trail, newest first.
import type { AppController } from './app.svelte';
import { normalizeError } from './errors';
import type { ActivityEntry, AppError } from './types';

export const ACTIVITY_LIMIT = 200;

export class ActivityController {
  entries = $state<ActivityEntry[]>([]);
  loading = $state(false);
  error = $state<AppError | null>(null);

  constructor(private readonly app: AppController) {}

  async load(limit = ACTIVITY_LIMIT): Promise<void> {
    this.loading = true;
    this.error = null;
    try {
      this.entries = await this.app.backend.activity(limit);
    } catch (e) {
      this.error = normalizeError(e);
    } finally {
      this.loading = false;
    }
  }
}

//! The usage report's REST call and types (docs/protocol.md, "Usage").

import { request } from '../app/api';
import type { GroupBy, UsageQuery, UsageReport } from '../generated/protocol';

export type { CostlyConversation, ModelUsage, UsageGroup, UsageReport, UsageTokens } from '../generated/protocol';

export type { GroupBy } from '../generated/protocol';

export interface UsageParams {
  since: number | null;
  groupBy: GroupBy;
  tz: string;
}

function query(params: UsageParams): string {
  const wire: UsageQuery = { groupBy: params.groupBy, tz: params.tz };
  if (params.since !== null) wire.since = params.since;
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(wire)) q.set(key, String(value));
  return q.toString();
}

export function getUsage(params: UsageParams): Promise<UsageReport> {
  return request<UsageReport>('GET', `/api/usage?${query(params)}`);
}

/** The CSV export of the same figures. */
export function csvUrl(params: UsageParams): string {
  return `/api/usage/export.csv?${query(params)}`;
}

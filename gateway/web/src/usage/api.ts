//! The usage report's REST call and types (docs/protocol.md, "Usage").

import { request } from '../app/api';
import type { UsageReport } from '../generated/protocol';

export type { CostlyConversation, ModelUsage, UsageGroup, UsageReport, UsageTokens } from '../generated/protocol';

export type GroupBy = 'day' | 'model' | 'project';

export interface UsageParams {
  since: number | null;
  groupBy: GroupBy;
  tz: string;
}

function query(params: UsageParams): string {
  const q = new URLSearchParams({ groupBy: params.groupBy, tz: params.tz });
  if (params.since !== null) q.set('since', String(params.since));
  return q.toString();
}

export function getUsage(params: UsageParams): Promise<UsageReport> {
  return request<UsageReport>('GET', `/api/usage?${query(params)}`);
}

/** The CSV export of the same figures. */
export function csvUrl(params: UsageParams): string {
  return `/api/usage/export.csv?${query(params)}`;
}

//! The usage report's REST call and types (docs/protocol.md, "Usage").

import { request } from '../app/api';

export interface UsageTokens {
  input: number;
  output: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
  total: number;
}

export interface ModelUsage {
  model: string;
  tokens: UsageTokens;
  /** `null` when the price table has no entry for the model. */
  costUsd: number | null;
  priced: boolean;
}

export interface UsageGroup {
  key: string;
  tokens: UsageTokens;
  costUsd: number;
  models: ModelUsage[];
}

export interface CostlyConversation {
  id: string;
  title: string;
  project: string;
  costUsd: number;
  tokens: UsageTokens;
  unpriced: boolean;
}

export interface UsageReport {
  groups: UsageGroup[];
  totals: UsageGroup;
  topConversations: CostlyConversation[];
  priceTableVersion: string;
  unpricedModels: string[];
}

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

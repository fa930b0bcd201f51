/**
 * The progress bar's ETA as text. cli-progress's own formatter rounds the minutes of an hour on
 * their own, so 2 h 59.8 min reads "2h60m"; this rounds the whole time first (to 5 minutes over an
 * hour, 5 seconds over a minute, else a second), then formats the rounded time, so a carry moves
 * into the next unit (59.6 s reads "1m00s", 3599 s "1h00m").
 * cli-progress passes 'NULL' or 'INF' while it has no rate; those are shown as they are.
 */
export function formatEta(seconds: number | string): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return String(seconds);
  const s = Math.max(0, seconds);
  const unit = s >= 3600 ? 300 : s >= 60 ? 5 : 1;
  const r = unit * Math.round(s / unit);
  const two = (n: number) => String(n).padStart(2, '0');
  if (r >= 3600) return `${Math.floor(r / 3600)}h${two(Math.floor((r % 3600) / 60))}m`;
  if (r >= 60) return `${Math.floor(r / 60)}m${two(r % 60)}s`;
  return `${r}s`;
}

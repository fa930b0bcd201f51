/**
 * The progress bar's ETA as text. cli-progress's own formatter rounds the minutes of an hour on
 * their own, so 2 h 59.8 min reads "2h60m"; this rounds the whole time to 5 minutes (over an hour),
 * 5 seconds (over a minute) or a second first, then splits it.
 * cli-progress passes 'NULL' or 'INF' while it has no rate; those are shown as they are.
 */
export function formatEta(seconds: number | string): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return String(seconds);
  const s = Math.max(0, seconds);
  if (s >= 3600) {
    const min = 5 * Math.round(s / 300);
    return `${Math.floor(min / 60)}h${String(min % 60).padStart(2, '0')}m`;
  }
  if (s >= 60) {
    const sec = 5 * Math.round(s / 5);
    if (sec >= 3600) return '1h00m';
    return `${Math.floor(sec / 60)}m${String(sec % 60).padStart(2, '0')}s`;
  }
  return `${Math.round(s)}s`;
}

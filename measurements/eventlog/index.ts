/** Public surface of the event log module: parse, replay, describe, compare, read. */
export { parseEventLog, parseSpecIdEvent, type EventLog, type EventLogFormat, type LogEvent, type EventDigest, type SpecIdEvent } from './parse.js';
export { replayEventLog, replayReport, replayBank, startupLocality, pcr0Start, isExtended, type ReplayReport, type NotReplayed } from './replay.js';
export * from './compare.js';
export { describeEvent } from './describe.js';
export { eventToJson, eventLogToJson, type EventJson } from './json.js';
export { readEventLogFile, readEventLogStream, MAX_EVENT_LOG_BYTES } from './read.js';
export { EV, eventTypeName, eventTypeCode, algName, algId } from './types.js';
export { parseUserspaceLog, replayWithUserspace, checkUserspaceRecord, type UserspaceRecord, type RecordCheck, type CombinedReplay } from './userspace.js';

import type { CommandModule } from 'yargs';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const runtimeCommands: CommandModule<any, any>[] = [];

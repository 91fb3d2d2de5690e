import type { CommandModule } from 'yargs';

/** Image commands (pull, images, inspect, ...): added by the images work. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const imageCommands: CommandModule<any, any>[] = [];

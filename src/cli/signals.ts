/**
 * Waits for Ctrl-C or SIGTERM, once. With `watchParent`, also for the process that started this one to go away
 * (checked twice a second): a dev stack started by `npm start` must not outlive an npm that was killed without
 * passing the signal on, nor keep its chain and ports.
 */
export function untilSignal(options: { watchParent?: boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const parent = process.ppid
    let watch: NodeJS.Timeout | undefined
    const on = (signal: string) => {
      process.off('SIGINT', on)
      process.off('SIGTERM', on)
      clearInterval(watch)
      resolve(signal)
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
    if (options.watchParent) {
      watch = setInterval(() => {
        if (process.ppid !== parent) on('parent process exited')
      }, 500)
      watch.unref()
    }
  })
}

/**
 * Every deadline Sluice sets, in one place: `work`, or what `expired()` returns
 * (or throws) if `work` has not settled within `ms`. The timer never outlives
 * the race, and `work` goes on after the deadline (nothing here can cancel it).
 */
export function withDeadline<T, U = never>(work: Promise<T>, ms: number, expired: () => U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<U>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(expired());
      } catch (error) {
        reject(error);
      }
    }, ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
